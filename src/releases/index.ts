export { CanaryWatch, type CanaryWatchOptions } from './canary.js';
export { type RolloutDecision, RolloutDecisions, type RolloutOutcome } from './decisions.js';
export { chosenByPercent, isCanaryNode, type ReleaseTarget, targetFor } from './selection.js';
export { Releases, type ReleasesOptions, type RolloutRequest, type VersionRef, type VersionView } from './service.js';
