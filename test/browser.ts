/**
 * Headless Chromium for the console tests, driven by playwright-core: Debian's `chromium`
 * package, never a downloaded browser. Missing, it is a failure, not a skip: `.ci/run`
 * installs it (`apt-get install -y chromium`).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { waitFor } from './support/util.js';

export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Launches Chromium with a fresh temporary profile (Playwright's default), or fails saying how to install it. */
export async function launchChromium(): Promise<Browser> {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: the console tests drive a real browser; install Debian's package with "apt-get install -y chromium"`,
  );
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/**
 * Watches a page for what a person with the developer tools open would see go wrong: page
 * errors (uncaught exceptions), console errors, and requests to any host but the server.
 * The browser itself logs a refused request as a console error ("Failed to load resource:
 * … 401"); such lines are accepted only inside `expecting()`, for the requests a test makes
 * fail on purpose.
 */
export class PageWatch {
  readonly pageErrors: string[] = [];
  readonly consoleErrors: string[] = [];
  readonly expectedErrors: string[] = [];
  readonly requests: string[] = [];
  private allowed: RegExp[] = [];

  constructor(
    page: Page,
    private readonly origin: string,
  ) {
    page.on('pageerror', (err) => this.pageErrors.push(err.message));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const text = m.text();
      if (this.allowed.some((re) => re.test(text))) this.expectedErrors.push(text);
      else this.consoleErrors.push(text);
    });
    page.on('request', (r) => this.requests.push(r.url()));
  }

  /** Runs `fn` while console errors matching `patterns` are expected. */
  async expecting<T>(patterns: RegExp[], fn: () => Promise<T>): Promise<T> {
    const before = this.allowed;
    this.allowed = [...before, ...patterns];
    try {
      return await fn();
    } finally {
      this.allowed = before;
    }
  }

  assertClean(): void {
    assert.deepEqual(this.pageErrors, [], 'no uncaught error in the page');
    assert.deepEqual(this.consoleErrors, [], 'no error in the browser console');
    const foreign = this.requests.filter((u) => !u.startsWith(`${this.origin}/`) && !u.startsWith('data:'));
    assert.deepEqual(foreign, [], `every request goes to ${this.origin}`);
    assert.ok(this.requests.length > 0, 'the page made requests');
  }
}

/** The text of the first element as rendered: what a person reads (hidden parts left out, line breaks kept). */
export async function textOf(locator: Locator): Promise<string> {
  // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText is the rendered text, which is what is asserted
  return locator.first().innerText();
}

/** Waits (bounded) until the locator's text matches. */
export async function waitForText(locator: Locator, re: RegExp, what: string, timeoutMs = 15_000): Promise<string> {
  let last = '';
  try {
    return await waitFor(
      async () => {
        last = (await locator.count()) === 0 ? '' : await textOf(locator);
        return re.test(last) ? last : undefined;
      },
      what,
      timeoutMs,
      50,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last text: ${JSON.stringify(last)}`);
  }
}
