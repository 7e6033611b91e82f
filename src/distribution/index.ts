/**
 * The distribution package's surface: the registry client, its config
 * section, credential stores, hosts configuration and platform selection.
 * See client.ts for the contract and an example.
 */
export { RegistryClient, MAX_MANIFEST_BYTES, type RegistryClientOptions } from './client.ts';
export { registrySection, distributionConfig, type DistributionConfig } from './config.ts';
export { DockerConfigCredentialStore, StaticCredentialStore, withRegistryCredentials, type CredentialStore, type Credentials } from './credentials.ts';
export { resolveHosts, parseHostsToml, isLoopbackRegistry, type RegistryEndpoint, type Capability } from './hosts.ts';
export { selectPlatform, parsePlatform, formatPlatform, platformScore, DEFAULT_PLATFORM } from './platform.ts';
export type { BlobSource, PushBlobOptions, PushBlobResult } from './push.ts';
export { RegistryByName, credentialsByHost } from './by-name.ts';
