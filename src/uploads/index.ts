/** Plugin source archives: the tar.gz reader and writer, unpacking, and the archives stored beside the artifacts. */
export { collect, extract } from './files.js';
export { SourceArchives, type SourceArchivesOptions } from './sources.js';
export { packTarGz, readTarGz, safeEntryPath, type TarEntry, type TarLimits } from './tar.js';
