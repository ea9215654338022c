/**
 * The JSDoc examples that cannot run in `deno test --doc` (they need a Redis,
 * RabbitMQ or Kafka on its default port, or a module of the reader's own) are
 * marked `ts ignore`; this test type-checks each of them as a module of its
 * own, with the package's import map, so none can rot unseen.
 */
import { assert, assertEquals } from "./support/assert.ts";

const ROOT = new URL("../", import.meta.url);
const SOURCES = ["mod.ts", "server/", "client/", "protocol/", "brokers/", "workers/"];

async function* sourceFiles(path: URL): AsyncGenerator<URL> {
  const info = await Deno.stat(path);
  if (info.isFile) {
    if (path.pathname.endsWith(".ts")) yield path;
    return;
  }
  for await (const entry of Deno.readDir(path)) {
    yield* sourceFiles(new URL(entry.name + (entry.isDirectory ? "/" : ""), path));
  }
}

/** The `ts ignore` blocks of a file's JSDoc, without their ` * ` margins. */
function ignoredExamples(text: string): string[] {
  const blocks: string[] = [];
  for (const match of text.matchAll(/^(\s*\*) ```ts ignore\n([\s\S]*?)^\s*\* ```$/gm)) {
    blocks.push(match[2]!.split("\n").map((line) => line.replace(/^\s*\* ?/, "")).join("\n"));
  }
  return blocks;
}

Deno.test("doc examples: every `ts ignore` JSDoc example type-checks against the package", async () => {
  const dir = await Deno.makeTempDir({ prefix: "prpc_doc_examples_" });
  try {
    const files: string[] = [];
    for (const source of SOURCES) {
      for await (const file of sourceFiles(new URL(source, ROOT))) {
        const relative = file.pathname.slice(ROOT.pathname.length);
        for (const [i, block] of ignoredExamples(await Deno.readTextFile(file)).entries()) {
          const name = `${dir}/${relative.replaceAll("/", "_")}_${i}.ts`;
          // A module of its own, even when the example only has statements.
          await Deno.writeTextFile(name, `${block}\nexport {};\n`);
          files.push(name);
        }
      }
    }
    assert(files.length >= 7, `found only ${files.length} ignored examples`);
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", "--config", new URL("deno.json", ROOT).pathname, ...files],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(output.code, 0, new TextDecoder().decode(output.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
