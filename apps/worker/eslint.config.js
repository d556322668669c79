// The workspace config plus the worker's layers. Imports point one way only:
//
//   wiring (worker.ts, loops, job-runner, http-server)
//     → pipeline/  → inference/, storage/  → media/  → errors/, util/
//
// A lower layer importing a higher one is a lint error, so no cycle can come back through it.
// config.ts and logger.ts are leaves every layer may read.
import root from "../../eslint.config.js";

/** Relative imports leaving this folder, except into the folders and files named. */
function onlyInto(folders, files = []) {
  const allowed = [...folders.map((f) => `${f}/`), ...files.map((f) => `${f.replace(".", "\\.")}$`)].join("|");
  return allowed ? `^\\.\\./(?!${allowed})` : "^\\.\\./";
}

function layer(dir, message, folders, files) {
  return {
    files: [`src/${dir}/**/*.ts`],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ regex: onlyInto(folders, files), message }] }],
    },
  };
}

const leaves = ["config.js", "logger.js"];

export default [
  ...root,
  layer("util", "util/ is app-agnostic: it imports only other util/ modules.", [], []),
  layer("errors", "errors/ is a leaf: it may import util/ only.", ["util"], []),
  layer("media", "media/ (probe and limits) may import errors/, util/, config and logger only.", ["errors", "util"], leaves),
  layer("storage", "storage/ never imports pipeline/ or the wiring: put shared code in errors/, media/ or util/.", ["errors", "util"], leaves),
  layer("inference", "inference/ never imports pipeline/ or the wiring: put shared code in errors/, media/ or util/.", ["errors", "media", "util"], leaves),
  layer("pipeline", "pipeline/ may import inference/, storage/, media/, errors/, util/, config and logger, never the wiring.", ["inference", "storage", "media", "errors", "util"], leaves),
];
