export const ROOT: string;
/** Undefined when dist/ is up to date, else why it is not. */
export function distStale(root?: string): string | undefined;
