/** The parsed shape of a Corefile: what plugin setups read. Plain data, frozen by the parser. */

/** One line of a server block (a plugin) or of a plugin's block (an option), with its own block if it opens one. */
export interface Directive {
  readonly name: string;
  readonly args: readonly string[];
  /** The lines between its `{` and `}`; undefined when the line opens no block. */
  readonly block: readonly Directive[] | undefined;
  readonly file: string;
  readonly line: number;
}

/** One zone a server block serves. A CIDR key gives one ServerKey per reverse zone, each with the same text. */
export interface ServerKey {
  /** Lower-case and absolute: `example.org.`, `0.0.10.in-addr.arpa.`, or `.` for the root. */
  readonly zone: string;
  /** The port written in the key; undefined means the default (53, or whatever the server is told). */
  readonly port: number | undefined;
  /** The key as written (after environment substitution), e.g. `dns://10.0.0.0/24:1053`. */
  readonly text: string;
}

export interface ServerBlock {
  readonly keys: readonly ServerKey[];
  readonly directives: readonly Directive[];
  /** Where its keys are written. */
  readonly file: string;
  readonly line: number;
}

export interface ParseOptions {
  /** The name errors give the text and that relative imports start from; default `Corefile`. */
  readonly file?: string;
  /** What `{$NAME}` and `{%NAME%}` read; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Reads an imported file; default fs.readFileSync. An error with code ENOENT means "no such file". */
  readonly readFile?: (path: string) => string;
  /** The entry names in a directory, for import globs; [] when it does not exist. Default fs.readdirSync. */
  readonly listDir?: (dir: string) => string[];
}
