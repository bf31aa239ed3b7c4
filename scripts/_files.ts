/**
 * The files a repository check reads.
 *
 * @module
 */

/**
 * Every file under `roots` (files or directories, relative to `root`) whose
 * path matches `ext`, sorted. Missing roots are skipped; `node_modules` and
 * dot-directories are not entered.
 *
 * @param root repository root
 * @param roots paths to walk, relative to `root`
 * @param ext which file paths to keep
 * @returns relative paths, sorted
 */
export async function listFiles(
  root: string,
  roots: readonly string[],
  ext: RegExp,
): Promise<string[]> {
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(`${root}/${rel}`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    if (info.isFile) {
      if (ext.test(rel)) files.push(rel);
      return;
    }
    if (!info.isDirectory) return;
    for await (const entry of Deno.readDir(`${root}/${rel}`)) {
      if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
      await walk(`${rel}/${entry.name}`);
    }
  };
  for (const r of roots) await walk(r);
  return files.sort();
}
