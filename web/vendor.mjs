// Copies the built browser files of the front-end packages into api/static/vendor/ (committed,
// served offline) and writes VERSIONS.txt with each package's version and licence.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";

const OUT = "../api/static/vendor";
const PACKAGES = [
  ["uplot", "", ["dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"]],
  ["swagger-ui-dist", "swagger-ui", ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE", "NOTICE"]],
  ["redoc", "redoc", ["bundles/redoc.standalone.js", "bundles/redoc.standalone.js.LICENSE.txt", "LICENSE"]],
];

const lines = [];
for (const [name, dir, files] of PACKAGES) {
  const target = dir ? `${OUT}/${dir}` : OUT;
  mkdirSync(target, { recursive: true });
  for (const f of files) copyFileSync(`node_modules/${name}/${f}`, `${target}/${f.split("/").pop()}`);
  const pkg = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8"));
  lines.push(`${name} ${pkg.version} ${pkg.license} (${dir ? dir + "/: " : ""}${files.map((f) => f.split("/").pop()).join(", ")})`);
}
writeFileSync(`${OUT}/VERSIONS.txt`, lines.join("\n") + "\n");
