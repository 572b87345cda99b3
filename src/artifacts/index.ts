export { type Artifact, ArtifactFiles, hasEntry } from './files.js';
export { ARTIFACT_FORMAT, artifactFormatOf, artifactHeader } from './format.js';
export { ArtifactStore, bundleDigest, type PublishedArtifact } from './store.js';
