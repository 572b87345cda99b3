import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the console's client sources and stylesheet live (they ship with the package). */
export const ASSETS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'assets');

export interface Asset {
  body: string;
  type: string;
  etag: string;
}

function asset(body: string, type: string): Asset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/** Bundles the client module (plain TypeScript, no framework) with esbuild, the compiler the host already has. */
async function buildScript(): Promise<Asset> {
  // loaded on the first request for the script: a host nobody opens the console of never loads it for this
  const { build } = await import('esbuild');
  const r = await build({
    entryPoints: [path.join(ASSETS_DIR, 'app.ts')],
    tsconfig: path.join(ASSETS_DIR, 'tsconfig.json'),
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  return asset(r.outputFiles[0]?.text ?? '', 'text/javascript; charset=utf-8');
}

/**
 * The console's script and stylesheet, built or read on first use and then kept: a few
 * kilobytes, answered with an ETag so a browser revalidates instead of downloading again.
 */
export class ConsoleAssets {
  private script: Promise<Asset> | undefined;
  private style: Promise<Asset> | undefined;

  get(name: 'app.js' | 'console.css'): Promise<Asset> {
    if (name === 'app.js') {
      this.script ??= buildScript();
      return this.retryOnFailure(this.script, () => {
        this.script = undefined;
      });
    }
    this.style ??= readFile(path.join(ASSETS_DIR, 'console.css'), 'utf8').then((css) => asset(css, 'text/css; charset=utf-8'));
    return this.retryOnFailure(this.style, () => {
      this.style = undefined;
    });
  }

  /** A failed build is not kept: the next request tries again. */
  private retryOnFailure(p: Promise<Asset>, forget: () => void): Promise<Asset> {
    p.catch(forget);
    return p;
  }
}
