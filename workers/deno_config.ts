/**
 * Finds the Deno configuration file of a function's module, for its `process`
 * workers: their main module is a `data:` URL, from which Deno discovers no
 * configuration, so the import map and lock file of the project are passed on
 * explicitly.
 *
 * @module
 */

const NAMES = ["deno.json", "deno.jsonc"];

/**
 * The nearest `deno.json` or `deno.jsonc` in the directory of a local module
 * or above it.
 *
 * @param module URL of the module.
 * @returns The path of the file, or `undefined` for a remote module, when
 *   there is none, or when the server may not look.
 */
export function findDenoConfig(module: string): string | undefined {
  const url = new URL(module);
  if (url.protocol !== "file:") return undefined;
  let directory = new URL(".", url);
  for (;;) {
    for (const name of NAMES) {
      const candidate = new URL(name, directory);
      try {
        if (Deno.statSync(candidate).isFile) return decodeURIComponent(candidate.pathname);
      } catch {
        // Not there, or not readable: look further up.
      }
    }
    const parent = new URL("..", directory);
    if (parent.href === directory.href) return undefined;
    directory = parent;
  }
}
