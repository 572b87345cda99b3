import { access } from 'node:fs/promises';

/**
 * Whether `p` exists (symlinks followed, as `existsSync`), without blocking the event loop: once a node serves,
 * every file-system call it makes about plugins, artifacts and uploaded sources is asynchronous.
 */
export function pathExists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}
