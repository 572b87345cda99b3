/**
 * The control plane a CLI command talks to when `--server` is not given: `PLUGIN_HOST_URL`,
 * else this machine's control plane at its default port (`ADMIN_PORT`, else `PORT` + 1,
 * `PORT` defaulting to 3000). The data plane is never the answer: it serves no write.
 */
export function defaultServerUrl(env: NodeJS.ProcessEnv = process.env): string {
  const named = env.PLUGIN_HOST_URL;
  if (named !== undefined && named !== '') return named.replace(/\/+$/, '');
  const port = env.ADMIN_PORT !== undefined && env.ADMIN_PORT !== '' ? env.ADMIN_PORT : String(Number(env.PORT ?? '3000') + 1);
  return `http://127.0.0.1:${port}`;
}
