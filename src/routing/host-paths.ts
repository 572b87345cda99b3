import { HostError } from '../errors/index.js';

/**
 * The paths the host owns: every path whose first segment is the first
 * segment of one of the host's own routes (`/plugins`, `/healthz`, `/docs`,
 * …, and any route added later), whatever the method. Requests for them go
 * to the host before the plugin table is consulted, and a plugin route that
 * could match one of them is refused when its version loads.
 */
export class HostPaths {
  /** First segments the host owns, by their first character (so a request costs one or two comparisons). */
  private readonly byFirstChar = new Map<number, string[]>();

  private constructor(readonly segments: ReadonlySet<string>) {
    for (const s of segments) {
      const c = s.charCodeAt(0);
      const list = this.byFirstChar.get(c) ?? [];
      list.push(s);
      this.byFirstChar.set(c, list);
    }
  }

  static readonly none = new HostPaths(new Set());

  /** The paths owned by a host whose routes have these URL patterns (each starting with a static segment). */
  static fromRoutes(urls: Iterable<string>): HostPaths {
    const segments = new Set<string>();
    for (const url of urls) {
      const seg = firstSegment(url);
      if (seg === '' || /[:*(]/.test(seg)) continue; // the root, or a pattern: the host owns no such prefix
      segments.add(seg);
    }
    return new HostPaths(segments);
  }

  /** True when the request URL (path plus query) lies under a prefix the host owns. */
  owns(url: string): boolean {
    const candidates = this.byFirstChar.get(url.charCodeAt(1));
    if (candidates === undefined) return false;
    for (const s of candidates) {
      if (!url.startsWith(s, 1)) continue;
      const next = url.charCodeAt(1 + s.length);
      // the segment ends there: end of URL, '/', '?' or '#'
      if (Number.isNaN(next) || next === 47 || next === 63 || next === 35) return true;
    }
    return false;
  }

  /**
   * Throws `PH_ERR_ROUTE_RESERVED` when the route pattern could match a path
   * the host owns: its first segment is a reserved one, or a parameter,
   * regular expression or wildcard that can match one.
   */
  check(plugin: string, method: string, url: string): void {
    const seg = firstSegment(url);
    const matcher = segmentMatcher(seg);
    for (const s of this.segments) {
      if (matcher(s)) {
        throw new HostError('PH_ERR_ROUTE_RESERVED', `${plugin}: route ${method} ${url} could match /${s}, which belongs to the host`, {
          details: { method, url, plugin, reserved: `/${s}` },
        });
      }
    }
  }
}

/** The first path segment of a route pattern or URL, without the leading '/'; a regex's parentheses may hold '/'. */
function firstSegment(url: string): string {
  let depth = 0;
  for (let i = 1; i < url.length; i++) {
    const ch = url[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    else if (depth === 0 && (ch === '/' || ch === '?' || ch === '#')) return url.slice(1, i);
  }
  return url.slice(1);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/**
 * What values a first segment of a route pattern (find-my-way syntax) can
 * take: static text, `:param` (any text), `:param(regex)`, `*` (anything,
 * including further segments), `::` for a literal colon.
 */
export function segmentMatcher(seg: string): (value: string) => boolean {
  if (!/[:*]/.test(seg)) return (v) => v === seg;
  let re = '';
  let i = 0;
  while (i < seg.length) {
    const ch = seg[i] as string;
    if (ch === ':' && seg[i + 1] === ':') {
      re += ':';
      i += 2;
    } else if (ch === ':') {
      let j = i + 1;
      while (j < seg.length && /[\w$]/.test(seg[j] as string)) j++;
      if (seg[j] === '(') {
        let depth = 0;
        let k = j;
        for (; k < seg.length; k++) {
          if (seg[k] === '(') depth++;
          else if (seg[k] === ')' && --depth === 0) break;
        }
        // find-my-way anchors a parameter's regex itself: drop the author's anchors
        re += `(?:${seg
          .slice(j + 1, k)
          .replace(/^\^/, '')
          .replace(/\$$/, '')})`;
        i = k + 1;
      } else {
        re += '[^/]*';
        i = j;
      }
      if (seg[i] === '?') i++; // optional parameter
    } else if (ch === '*') {
      return () => true; // a wildcard matches the rest of the path, whatever it is
    } else {
      re += escapeRegExp(ch);
      i++;
    }
  }
  let compiled: RegExp;
  try {
    compiled = new RegExp(`^${re}$`);
  } catch {
    return () => true; // a pattern we cannot read is assumed to match: refuse rather than risk shadowing
  }
  return (v) => compiled.test(v);
}
