// Validates Kubernetes manifests (by default deploy/kubernetes/*.yaml)
// against the schemas of CloudNativePG's resources and Kubernetes' own:
//
//   npm ci --prefix deploy/kubernetes/validate
//   node deploy/kubernetes/validate/validate.mjs [file.yaml ...]
//
// Four checks, each of which a manifest must pass:
// 1. the schema (types, enums, patterns, required fields), as the API server
//    checks it: @kubernetes-models' validators, generated from the CRDs;
// 2. no field the schema does not know: the API server would drop it
//    silently (a misspelt `instaces: 3` gives a one-instance cluster), so
//    every document is also type-checked as a TypeScript object literal of
//    the resource's type, where an unknown property is an error;
// 3. references between the documents: a Pooler's or Database's cluster,
//    a Cluster's custom-queries ConfigMap and key;
// 4. the custom queries themselves: postgres_exporter's format.
// Exits 1 and prints every problem when any check fails.

import { readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import ts from "typescript";

const here = dirname(fileURLToPath(import.meta.url));

// apiVersion + kind -> the model's module and its interface
const KINDS = {
  "postgresql.cnpg.io/v1 Cluster": "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/Cluster",
  "postgresql.cnpg.io/v1 Database": "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/Database",
  "postgresql.cnpg.io/v1 Pooler": "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/Pooler",
  "postgresql.cnpg.io/v1 ImageCatalog": "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/ImageCatalog",
  "v1 ConfigMap": "kubernetes-models/v1/ConfigMap",
  "v1 Secret": "kubernetes-models/v1/Secret",
  "v1 Service": "kubernetes-models/v1/Service",
};

const problems = [];
const problem = (where, what) => problems.push(`${where}: ${what}`);

const files = process.argv.length > 2
  ? process.argv.slice(2).map((f) => resolve(f))
  : readdirSync(join(here, "..")).filter((f) => f.endsWith(".yaml")).sort().map((f) => join(here, "..", f));

// every document with where it came from
const docs = [];
for (const file of files) {
  const name = relative(process.cwd(), file) || file;
  const parsed = parseAllDocuments(readFileSync(file, "utf8"), { uniqueKeys: true });
  parsed.forEach((d, i) => {
    const where = `${name} (document ${i + 1})`;
    for (const e of d.errors) problem(where, `YAML: ${e.message}`);
    const value = d.toJS();
    if (value === null || value === undefined) return; // an empty document
    docs.push({ where, value });
  });
}

// 1. schemas
for (const d of docs) {
  const v = d.value;
  const key = `${v.apiVersion} ${v.kind}`;
  const module = KINDS[key];
  if (!module) {
    problem(d.where, `no schema here for apiVersion ${v.apiVersion} kind ${v.kind}`);
    continue;
  }
  d.module = module;
  d.kind = v.kind;
  const Model = (await import(module))[v.kind];
  try {
    new Model(v).validate();
  } catch (e) {
    problem(d.where, `${v.kind} ${v.metadata?.name ?? "(no name)"}: ${e.message}`);
  }
}

// 2. unknown fields: a TypeScript file with one typed literal a document,
// compiled (no output) where the packages resolve
const typed = docs.filter((d) => d.module);
if (typed.length > 0) {
  const work = mkdtempSync(join(here, ".check-"));
  try {
    const lines = [];
    typed.forEach((d, i) => {
      lines.push(`import type { I${d.kind} as T${i} } from "${d.module}";`);
    });
    const owner = []; // generated line -> document
    typed.forEach((d, i) => {
      const body = `export const doc${i}: T${i} = ${JSON.stringify(d.value, null, 2)};`.split("\n");
      for (const l of body) {
        lines.push(l);
        owner[lines.length] = d;
      }
    });
    const file = join(work, "manifests.ts");
    writeFileSync(file, lines.join("\n") + "\n");
    const program = ts.createProgram([file], {
      noEmit: true,
      strict: true,
      skipLibCheck: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      typeRoots: [],
      types: [],
    });
    for (const diag of ts.getPreEmitDiagnostics(program)) {
      const text = ts.flattenDiagnosticMessageText(diag.messageText, "\n  ");
      if (diag.file && diag.start !== undefined) {
        const { line } = diag.file.getLineAndCharacterOfPosition(diag.start);
        const d = owner[line + 1];
        const source = diag.file.text.split("\n")[line].trim();
        problem(d ? d.where : "generated check", `${text}\n  at: ${source}`);
      } else {
        problem("generated check", text);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// 3. references between documents
const named = (kind, name) => docs.find((d) => d.value.kind === kind && d.value.metadata?.name === name);
for (const d of docs) {
  const v = d.value;
  if ((v.kind === "Pooler" || v.kind === "Database") && v.spec?.cluster?.name && !named("Cluster", v.spec.cluster.name)) {
    problem(d.where, `${v.kind} ${v.metadata?.name} names Cluster ${v.spec.cluster.name}, which no file given defines`);
  }
  if (v.kind === "Cluster") {
    for (const ref of v.spec?.monitoring?.customQueriesConfigMap ?? []) {
      const cm = named("ConfigMap", ref.name);
      if (!cm) {
        problem(d.where, `custom queries ConfigMap ${ref.name}: no file given defines it`);
      } else if (typeof cm.value.data?.[ref.key] !== "string") {
        problem(d.where, `custom queries ConfigMap ${ref.name} has no key ${ref.key}`);
      } else {
        cm.queryKeys = [...(cm.queryKeys ?? []), ref.key];
      }
    }
  }
}

// 4. custom queries (postgres_exporter's queries.yaml format)
const USAGES = ["LABEL", "COUNTER", "GAUGE", "MAPPEDMETRIC", "DURATION", "HISTOGRAM", "DISCARD"];
const QUERY_KEYS = ["query", "metrics", "master", "primary", "cache_seconds", "target_databases", "predicate_query", "runonserver"];
const IDENT = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
for (const d of docs) {
  for (const key of d.queryKeys ?? []) {
    const where = `${d.where} data.${key}`;
    let queries;
    try {
      queries = parseYaml(d.value.data[key], { uniqueKeys: true });
    } catch (e) {
      problem(where, `YAML: ${e.message}`);
      continue;
    }
    if (queries === null || typeof queries !== "object" || Array.isArray(queries)) {
      problem(where, "must be a map of metric namespaces");
      continue;
    }
    for (const [ns, q] of Object.entries(queries)) {
      const at = `${where} ${ns}`;
      if (!IDENT.test(ns)) problem(at, "namespace is not a metric name");
      if (q === null || typeof q !== "object" || Array.isArray(q)) {
        problem(at, "must be a map with query and metrics");
        continue;
      }
      for (const k of Object.keys(q)) if (!QUERY_KEYS.includes(k)) problem(at, `unknown key ${k}`);
      if (typeof q.query !== "string" || q.query.trim() === "") problem(at, "query: a non-empty string is required");
      for (const k of ["master", "primary", "runonserver"]) {
        if (k in q && typeof q[k] !== (k === "runonserver" ? "string" : "boolean")) problem(at, `${k}: wrong type`);
      }
      if ("cache_seconds" in q && !(Number.isInteger(q.cache_seconds) && q.cache_seconds >= 0)) problem(at, "cache_seconds: a whole number of seconds");
      if ("target_databases" in q && !(Array.isArray(q.target_databases) && q.target_databases.every((x) => typeof x === "string"))) {
        problem(at, "target_databases: a list of database names");
      }
      if (!Array.isArray(q.metrics) || q.metrics.length === 0) {
        problem(at, "metrics: a non-empty list is required");
        continue;
      }
      const seen = new Set();
      for (const m of q.metrics) {
        const names = m && typeof m === "object" ? Object.keys(m) : [];
        if (names.length !== 1) {
          problem(at, "each metric is a map of one column name");
          continue;
        }
        const [col] = names;
        const spec = m[col] ?? {};
        if (!IDENT.test(col)) problem(at, `metric ${col}: not a column name`);
        if (seen.has(col)) problem(at, `metric ${col}: listed twice`);
        seen.add(col);
        if (!USAGES.includes(spec.usage)) problem(at, `metric ${col}: usage ${spec.usage} is not one of ${USAGES.join(", ")}`);
        if ("description" in spec && typeof spec.description !== "string") problem(at, `metric ${col}: description must be text`);
        for (const k of Object.keys(spec)) {
          if (!["usage", "description", "metric_mapping", "buckets"].includes(k)) problem(at, `metric ${col}: unknown key ${k}`);
        }
      }
      if (![...q.metrics].some((m) => m && typeof m === "object" && Object.values(m)[0]?.usage !== "LABEL")) {
        problem(at, "no metric that is not a LABEL");
      }
    }
  }
}

for (const d of docs) {
  if (d.module) console.log(`checked ${d.where}: ${d.value.kind} ${d.value.metadata?.name}`);
}
if (problems.length > 0) {
  for (const p of problems) console.error(`INVALID ${p}`);
  console.error(`${problems.length} problem(s) in ${files.length} file(s)`);
  process.exit(1);
}
console.log(`${docs.length} document(s) in ${files.length} file(s): valid`);
