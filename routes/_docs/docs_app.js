// Interactive API reference, rendered in the browser from /openapi.json.
// Self-contained (no CDN): the edge may run where nothing else is reachable.
"use strict";
const root = document.getElementById("app");
const keyInput = document.getElementById("api-key");
keyInput.value = sessionStorage.getItem("anya-api-key") ?? "";
keyInput.addEventListener("change", () => sessionStorage.setItem("anya-api-key", keyInput.value));

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function deref(spec, schema) {
  if (schema && schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return spec.components?.schemas?.[name] ?? schema;
  }
  return schema;
}

function skeleton(spec, schema, depth = 0) {
  schema = deref(spec, schema);
  if (!schema || depth > 5) return null;
  if (schema.example !== undefined) return schema.example;
  if (schema.enum) return schema.enum[0];
  switch (schema.type) {
    case "object": {
      const out = {};
      for (const [k, v] of Object.entries(schema.properties ?? {})) {
        if ((schema.required ?? []).includes(k)) out[k] = skeleton(spec, v, depth + 1);
      }
      return out;
    }
    case "array":
      return [skeleton(spec, schema.items, depth + 1)];
    case "string":
      return "";
    case "integer":
    case "number":
      return 0;
    case "boolean":
      return false;
    default:
      return null;
  }
}

function operationView(spec, path, method, op) {
  const params = (op.parameters ?? []).map((p) => deref(spec, p));
  const bodySchema = op.requestBody?.content?.["application/json"]?.schema;
  const inputs = {};
  const form = el("div", { class: "try" });
  for (const p of params) {
    const input = el("input", { placeholder: `${p.name} (${p.in})` });
    inputs[`${p.in}:${p.name}`] = input;
    form.append(el("label", {}, `${p.name} `, input));
  }
  let bodyArea;
  if (bodySchema) {
    bodyArea = el("textarea", { rows: "8" });
    bodyArea.value = JSON.stringify(skeleton(spec, bodySchema), null, 2);
    form.append(el("label", {}, "Body"), bodyArea);
  }
  const idem = el("input", { placeholder: "Idempotency-Key (optional)" });
  form.append(el("label", {}, "Idempotency-Key ", idem));
  const out = el("pre", { class: "out" });
  const button = el("button", {}, "Send");
  button.addEventListener("click", async () => {
    let url = path;
    const query = new URLSearchParams();
    for (const p of params) {
      const v = inputs[`${p.in}:${p.name}`].value;
      if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(v));
      if (p.in === "query" && v !== "") query.set(p.name, v);
    }
    const headers = {};
    if (keyInput.value) headers.Authorization = `Bearer ${keyInput.value}`;
    if (idem.value) headers["Idempotency-Key"] = idem.value;
    if (bodyArea) headers["Content-Type"] = "application/json";
    const q = query.toString();
    try {
      const res = await fetch(q ? `${url}?${q}` : url, {
        method: method.toUpperCase(),
        headers,
        body: bodyArea ? bodyArea.value : undefined,
      });
      const text = await res.text();
      let shown = text;
      try {
        shown = JSON.stringify(JSON.parse(text), null, 2);
      } catch { /* not JSON */ }
      out.textContent = `${res.status} ${res.statusText}\n${shown}`;
    } catch (err) {
      out.textContent = String(err);
    }
  });
  form.append(button, out);
  const responses = el("ul");
  for (const [status, r] of Object.entries(op.responses ?? {})) {
    responses.append(el("li", {}, `${status} — ${deref(spec, r).description ?? ""}`));
  }
  const details = el("details", { class: `op ${method}` });
  details.append(
    el(
      "summary",
      {},
      el("span", { class: "method" }, method.toUpperCase()),
      ` ${path} `,
      el("span", { class: "summary" }, op.summary ?? ""),
    ),
    el("p", {}, op.description ?? ""),
    ...(op.security
      ? [
        el(
          "p",
          { class: "scope" },
          `Requires an API key${
            op["x-required-scope"] ? ` with scope "${op["x-required-scope"]}"` : ""
          }.`,
        ),
      ]
      : []),
    ...(bodySchema
      ? [el("pre", { class: "schema" }, JSON.stringify(deref(spec, bodySchema), null, 2))]
      : []),
    el("h4", {}, "Responses"),
    responses,
    form,
  );
  return details;
}

async function main() {
  const spec = await (await fetch("/openapi.json")).json();
  document.title = `${spec.info.title} ${spec.info.version}`;
  root.append(
    el("h1", {}, `${spec.info.title} `, el("small", {}, spec.info.version)),
    el("p", {}, spec.info.description ?? ""),
  );
  const byTag = new Map();
  for (const [path, item] of Object.entries(spec.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      const tag = op.tags?.[0] ?? "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(spec, path, method, op));
    }
  }
  for (const [tag, ops] of byTag) root.append(el("h2", {}, tag), ...ops);
}
main().catch((err) => {
  root.textContent = `Could not load /openapi.json: ${err}`;
});
