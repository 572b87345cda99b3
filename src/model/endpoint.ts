/** An endpoint a plugin declares or registers, as written to `plugin_endpoints`; handler and type are optional. */
export interface EndpointInput {
  method: string;
  path: string;
  handler?: string;
  type?: string;
}

/** The type of an endpoint that names none (the column's default too). */
export const DEFAULT_ENDPOINT_TYPE = 'REST';

/** An endpoint with its defaults filled in: no handler name, type `REST`. The one place they are chosen. */
export function endpointRecord(e: {
  method: string;
  path: string;
  handler?: string | null | undefined;
  type?: string | null | undefined;
}): Required<EndpointInput> {
  return { method: e.method, path: e.path, handler: e.handler ?? '', type: e.type ?? DEFAULT_ENDPOINT_TYPE };
}

/** What tells two endpoint entries apart once their defaults are filled in (a stored row and a declared one compare equal). */
export function endpointKey(e: {
  method: string;
  path: string;
  handler?: string | null | undefined;
  type?: string | null | undefined;
}): string {
  const r = endpointRecord(e);
  return `${r.method} ${r.path} ${r.handler} ${r.type}`;
}
