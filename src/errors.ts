/**
 * Errors with a stable `code`, so callers, logs and tests match on the code rather than the message.
 * One base class; a subclass only where a caller acts on the kind.
 */
export class ClusterDnsError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClusterDnsError';
    this.code = code;
  }
}

/** A bad flag, or a setting that does not validate: startup stops with this message. */
export class ConfigError extends ClusterDnsError {
  constructor(message: string) {
    super('E_CONFIG', message);
    this.name = 'ConfigError';
  }
}

/** A manifest that cannot be read, parsed or understood; the message names the file (and line when known). */
export class ManifestError extends ClusterDnsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_MANIFEST', message, options);
    this.name = 'ManifestError';
  }
}
