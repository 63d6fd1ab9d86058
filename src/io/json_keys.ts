/**
 * Duplicate keys in JSON text. `JSON.parse` keeps the last of two equal keys without a word; a file
 * format whose header is JSON (safetensors) must refuse them instead, since two readers could then
 * see two different files.
 *
 * @module
 */

/** A key that occurs twice in one object, and the keys of the objects that enclose it. */
export interface DuplicateKey {
  key: string;
  /** Keys from the outermost object inwards (`[]` for a key of the top-level object). */
  parents: string[];
}

interface Frame {
  isObject: boolean;
  keys: Set<string>;
  expectKey: boolean;
  /** The key under which this value sits in its parent object, if any. */
  name?: string;
}

/**
 * The first key that occurs twice in the same object of `text`, or undefined. `text` must be valid
 * JSON (check it with `JSON.parse` first); keys compare after unescaping, as `JSON.parse` does.
 */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  const stack: Frame[] = [];
  let lastKey: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.isObject && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) {
          return { key, parents: stack.slice(1).map((f) => f.name ?? "") };
        }
        top.keys.add(key);
        top.expectKey = false;
        lastKey = key;
      }
      i = j;
    } else if (ch === "{" || ch === "[") {
      const parent = stack[stack.length - 1];
      stack.push({
        isObject: ch === "{",
        keys: new Set(),
        expectKey: ch === "{",
        name: parent?.isObject ? lastKey : undefined,
      });
    } else if (ch === "}" || ch === "]") {
      stack.pop();
    } else if (ch === ",") {
      const top = stack[stack.length - 1];
      if (top?.isObject) top.expectKey = true;
    }
  }
  return undefined;
}
