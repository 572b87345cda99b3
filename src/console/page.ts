/** Escapes text for HTML content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Headers of the console page. The policy allows scripts, styles and connections from this
 * host only and no inline script or style at all (the page has none); `data:` images are for
 * the empty favicon, which saves the browser a request that would end in a 404.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

/**
 * The page shell: landmarks, the token form, the empty tables and the detail dialog. The
 * client module (`/console/app.js`) fills them from the read API and keeps them current.
 */
export function consolePage(o: { nodeId: string; version: string }): string {
  const node = escapeHtml(o.nodeId);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>plugin-host console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/console.css">
<script type="module" src="/console/app.js"></script>
</head>
<body>
<a class="skip" href="#plugins-title">Skip to the plugins</a>
<header>
  <h1>plugin-host console</h1>
  <p>Node <code>${node}</code> · plugin-host ${escapeHtml(o.version)}</p>
  <p id="connection" class="connection connection-connecting" role="status">Connecting…</p>
  <p id="updated"></p>
</header>
<main>
  <form id="token-form" class="token">
    <label for="token">Admin token (or a scoped token)</label>
    <input id="token" name="token" type="password" autocomplete="off" spellcheck="false">
    <button type="button" id="token-forget">Forget</button>
    <p class="hint">The admin token or a scoped token: kept in this tab only (sessionStorage) and sent as a bearer token with the live feed, Enable, Disable, Reload, Rollback, Promote, Abort, a plugin's configuration and its audit trail; actions the token's scopes do not allow are hidden. Reading the plugins needs no token; following changes live does.</p>
  </form>
  <p id="message" class="message" role="status" aria-live="polite"></p>
  <p id="stale" class="notice" role="alert" hidden>The database is unreachable: showing the last known state.</p>
  <section aria-labelledby="plugins-title">
    <h2 id="plugins-title" tabindex="-1">Plugins <span id="count"></span></h2>
    <div class="table-wrap">
      <table id="plugins" class="cards">
        <thead><tr></tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <p id="empty" hidden>No plugin is registered.</p>
  </section>
  <section id="unregistered" aria-labelledby="unregistered-title" hidden>
    <h2 id="unregistered-title">Unregistered directories</h2>
    <p class="hint">Directories of the plugins directory that could not be registered, with the reason.</p>
    <div class="table-wrap">
      <table class="cards">
        <thead><tr><th scope="col">Directory</th><th scope="col">Path</th><th scope="col">Error</th></tr></thead>
        <tbody id="unregistered-rows"></tbody>
      </table>
    </div>
  </section>
  <noscript><p>This console needs JavaScript. The same data is at <a href="/plugins">/plugins</a>.</p></noscript>
</main>
<dialog id="detail" aria-labelledby="detail-title">
  <div class="dialog-head">
    <h2 id="detail-title"></h2>
    <button type="button" id="detail-refresh">Refresh</button>
    <button type="button" id="detail-close">Close</button>
  </div>
  <div class="dialog-body">
    <div id="detail-summary"></div>
    <h3>Nodes</h3>
    <div id="detail-nodes"></div>
    <h3>Versions</h3>
    <div id="detail-versions">
      <div id="versions-rollout"></div>
      <div id="versions-table"></div>
      <p id="versions-status" class="message" role="status" aria-live="polite"></p>
    </div>
    <h3>Routes</h3>
    <div id="detail-routes"></div>
    <h3>Configuration</h3>
    <div id="detail-config"></div>
    <h3>Health on this node</h3>
    <div id="detail-health"></div>
    <h3>Errors seen by this node</h3>
    <div id="detail-errors"></div>
    <h3>Audit</h3>
    <div id="detail-audit"></div>
  </div>
</dialog>
</body>
</html>
`;
}
