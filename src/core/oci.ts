/**
 * The OCI vocabulary lives in media-types.ts; this module re-exports it for
 * older import paths.
 */
export { MediaTypes, isConfigType, isIndexType, isManifestType } from './media-types.ts';
export type { Descriptor, Platform } from './media-types.ts';
