/**
 * How deeply values may nest, and how that is measured in JSON text without
 * recursion: hostile input nested thousands of levels deep must be refused
 * cheaply, before anything walks it with a recursive algorithm
 * (`JSON.stringify`, structured clone, a user's function) whose stack it could
 * exhaust. The limit counts arrays and objects inside each other, the
 * outermost as level 1.
 *
 * @module
 */

/**
 * How deeply a value may nest by default: arrays and objects inside each other,
 * the outermost counting as 1. Generous for real data, and far below where
 * `JSON.stringify` or structured clone run out of stack.
 */
export const DEFAULT_MAX_DEPTH = 1_000;

/**
 * The largest `maxDepth` a server or client accepts: structured clone, which
 * carries values to and from `thread` workers, runs out of stack a little
 * past 2 000 levels.
 */
export const MAX_DEPTH_LIMIT = 2_000;

/**
 * Tells whether JSON text nests arrays and objects deeper than `maxDepth`,
 * with one pass over its characters and no recursion (the outermost level
 * counts as 1). Text shorter than `2 * (maxDepth + 1)` characters is not read at all. It
 * assumes the text is JSON (strings are skipped by their quotes); on any other
 * text its answer means nothing.
 *
 * @param text JSON text.
 * @param maxDepth The deepest nesting allowed.
 * @returns `true` when some place nests deeper.
 */
export function nestsDeeper(text: string, maxDepth: number): boolean {
  // Each level needs an opening and a closing bracket of its own.
  if (text.length < 2 * (maxDepth + 1)) return false;
  let depth = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // "
      // Skip the string: to the next quote that no backslash escapes.
      for (i++; i < length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++; // \ escapes the next character
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) { // [ {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d || c === 0x7d) { // ] }
      depth--;
    }
  }
  return false;
}

/**
 * Tells whether a parsed value nests arrays and objects deeper than
 * `maxDepth`, without recursion (the outermost level counts as 1).
 *
 * @param value A value parsed from JSON.
 * @param maxDepth The deepest nesting allowed.
 * @returns `true` when some place nests deeper.
 */
export function valueNestsDeeper(value: unknown, maxDepth: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [next, depth] = stack.pop()!;
    if (typeof next !== "object" || next === null) continue;
    if (depth > maxDepth) return true;
    for (const child of Array.isArray(next) ? next : Object.values(next)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
