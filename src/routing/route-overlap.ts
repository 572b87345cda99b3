import { HostError } from '../errors/index.js';
import type { LoadedVersion } from '../runtime/index.js';
import { segmentMatcher } from './host-paths.js';

/**
 * Whether two plugins' routes could answer the same URL. The router picks
 * the most specific route (a static segment before a parameter), so a later
 * plugin registering `/victim/admin` would take that URL from the plugin
 * serving `/victim/:id`, and one registering `/victim/:id` would take every
 * other URL under `/victim/` from the plugin serving `/victim/admin`. Exact
 * duplicates are `PH_ERR_ROUTE_CONFLICT` (see `route-table.ts`); this finds
 * the rest, segment by segment.
 */

// find-my-way's own rule: a last parameter followed by `?` is optional and registers two paths
const OPTIONAL_PARAM = /(\/:[^/()]*?)\?(\/?)/;

/** The patterns a route registers (two for an optional last parameter), as lists of segments. */
function patternsOf(url: string): string[][] {
  const urls = OPTIONAL_PARAM.test(url) ? [url.replace(OPTIONAL_PARAM, '$1$2'), url.replace(OPTIONAL_PARAM, '$2') || '/'] : [url];
  return urls.map(segments);
}

/** The segments of a route pattern; a parameter's regular expression may hold '/'. */
function segments(url: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 1;
  for (let i = 1; i < url.length; i++) {
    const ch = url[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    else if (depth === 0 && ch === '/') {
      out.push(url.slice(start, i));
      start = i + 1;
    }
  }
  out.push(url.slice(start));
  return out;
}

const dynamic = (seg: string) => seg.includes(':') && !/^[^:]*(::[^:]*)*$/.test(seg);

/** True when some URL matches both patterns (two dynamic segments are assumed to share a value). */
function patternsOverlap(a: readonly string[], b: readonly string[]): boolean {
  for (let i = 0; ; i++) {
    const sa = a[i];
    const sb = b[i];
    if (sa === undefined || sb === undefined) return sa === sb;
    // a wildcard takes the rest of the path, whatever it is
    if (sa.includes('*') || sb.includes('*')) return true;
    const da = dynamic(sa);
    const db = dynamic(sb);
    if (!da && !db) {
      if (sa.replaceAll('::', ':') !== sb.replaceAll('::', ':')) return false;
    } else if (da && !db) {
      if (!segmentMatcher(sa)(sb.replaceAll('::', ':'))) return false;
    } else if (!da && db) {
      if (!segmentMatcher(sb)(sa.replaceAll('::', ':'))) return false;
    }
  }
}

/** Whether routes `a` and `b` (method and URL pattern) could answer the same request. */
export function routesOverlap(a: { method: string; url: string }, b: { method: string; url: string }): boolean {
  if (a.method !== b.method) return false;
  const pa = patternsOf(a.url);
  const pb = patternsOf(b.url);
  return pa.some((x) => pb.some((y) => patternsOverlap(x, y)));
}

/**
 * Throws `PH_ERR_ROUTE_OVERLAP` when a route of `p` could answer a URL a route
 * of one of `others` answers, naming both routes and both plugins.
 */
export function checkOverlap(p: LoadedVersion, others: readonly LoadedVersion[]): void {
  for (const r of p.routes) {
    for (const o of others) {
      for (const or of o.routes) {
        if (!routesOverlap(r, or)) continue;
        throw new HostError(
          'PH_ERR_ROUTE_OVERLAP',
          `${p.name}: route ${r.method} ${r.url} could answer URLs that route ${or.method} ${or.url} of plugin "${o.name}" answers (ROUTE_OVERLAP_ALLOW lets them share)`,
          { details: { method: r.method, url: r.url, plugin: p.name, owner: o.name, ownerUrl: or.url } },
        );
      }
    }
  }
}
