// The past_key_values explorer as an anywidget ES module: the arithmetic runs in the page.
//
// `describePrefix` is a line-by-line port of `ptutor.book.widgets.describe_prefix` (and of
// `reshape_steps`, `prefix_param_count`, `_human` and `ptutor.cache.prefix_cache_bytes`);
// tests/test_widgets.py runs it with node and compares its text with Python's for every
// architecture preset. Nothing model-specific is typed here: the presets, the dtype sizes and
// the slider ranges come from Python through the widget's traits (`presets`, `dtype_sizes`,
// `sliders`), so the saved widget state holds everything a static page needs.

/** 1234567 -> "1,234,567" (Python's f"{n:,}" for an integer). */
export function commas(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Python's f"{x:,.{digits}f}" for x >= 0 whose decimal scaling is exact (ties round half to even). */
export function fixed(x, digits) {
  const scale = 10 ** digits;
  const t = x * scale;
  let r = Math.floor(t);
  const frac = t - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r += 1;
  if (!digits) return commas(r);
  const whole = Math.floor(r / scale);
  return `${commas(whole)}.${String(r - whole * scale).padStart(digits, "0")}`;
}

/** ptutor.book.widgets._human: bytes as B / KiB / MiB / GiB. */
export function human(n) {
  for (const unit of ["B", "KiB", "MiB", "GiB"]) {
    if (Math.abs(n) < 1024 || unit === "GiB") return unit === "B" ? `${fixed(n, 0)} B` : `${fixed(n, 1)} ${unit}`;
    n /= 1024;
  }
  return String(n);
}

/** Python's str() of a tuple of ints: (5,) or (8, 3, 20, 64). */
export function tupleText(shape) {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

/** ptutor.book.widgets.reshape_steps for a layout given as the describe_prefix arguments. */
export function reshapeSteps({ batch, layers, kv_heads, head_dim, prefix_len, projection = false, encoder_hidden = 0 }) {
  const B = batch, L = layers, H = kv_heads, d = head_dim, P = prefix_len;
  const kvWidth = H * d;
  const W = L * 2 * kvWidth;
  const steps = [["prefix ids: arange(P)", [P]], ["expand to the batch", [B, P]]];
  if (projection) {
    const e = encoder_hidden || kvWidth;
    steps.push(["embedding (P, H*d) looked up", [B, P, kvWidth]],
               ["MLP: Linear H*d->e, tanh", [B, P, e]],
               ["MLP: Linear e->L*2*H*d", [B, P, W]]);
  } else {
    steps.push(["embedding (P, L*2*H*d) looked up", [B, P, W]]);
  }
  steps.push(["view (B, P, 2L, H, d)", [B, P, 2 * L, H, d]],
             ["permute -> (2L, B, H, P, d)", [2 * L, B, H, P, d]],
             [`split into ${L} (key, value) pairs, each`, [B, H, P, d]],
             [`DynamicCache: ${L} layers, keys and values each`, [B, H, P, d]]);
  return steps;
}

/** ptutor.book.widgets.prefix_param_count. */
export function prefixParamCount({ layers, kv_heads, head_dim, prefix_len, projection = false, encoder_hidden = 0 }) {
  const k = kv_heads * head_dim;
  const W = layers * 2 * k;
  if (!projection) return prefix_len * W;
  const e = encoder_hidden || k;
  return prefix_len * k + (k * e + e) + (e * W + W);
}

/**
 * ptutor.book.widgets.describe_prefix: the same report, character for character.
 * `args` holds describe_prefix's keyword arguments; `dtypeSizes` maps a dtype name to its
 * element size in bytes (Python passes torch's sizes).
 */
export function describePrefix(args, dtypeSizes) {
  const a = { batch: 8, prefix_len: 20, projection: false, encoder_hidden: 512, dtype: "float32", ...args };
  const { batch, layers, heads, kv_heads, head_dim, prefix_len, dtype } = a;
  const lines = [];
  if (heads % kv_heads) {
    lines.push(`!! ${heads} attention heads cannot be shared by ${kv_heads} key/value heads ` +
               "(heads must be a multiple of kv-heads)");
  } else if (kv_heads < heads) {
    lines.push(`grouped-query attention: ${heads} query heads share ${kv_heads} key/value heads, ` +
               `so the prefix has ${kv_heads} heads (not ${heads})`);
  }
  const steps = reshapeSteps(a);
  const width = Math.max(...steps.map(([s]) => s.length));
  lines.push(`${"step".padEnd(width)}  shape`);
  for (const [s, shape] of steps) lines.push(`${s.padEnd(width)}  ${tupleText(shape)}`);
  const plain = prefixParamCount({ ...a, projection: false });
  lines.push("");
  lines.push(`trainable parameters without projection: ${commas(plain)} (P x L x 2 x H x d)`);
  if (a.projection) {
    const proj = prefixParamCount({ ...a, projection: true });
    lines.push(`trainable parameters with projection:    ${commas(proj)} (P x Hd + Hd x e + e + e x L2Hd + L2Hd); ` +
               `after training it folds into the ${commas(plain)} above`);
  }
  const itemsize = dtypeSizes[dtype];
  if (itemsize === undefined) throw new Error(`unknown dtype ${dtype}`);
  const nbytes = layers * 2 * batch * kv_heads * prefix_len * head_dim * itemsize;
  lines.push(`prefix cache, batch ${batch}, ${dtype}: ${commas(nbytes)} bytes (${human(nbytes)})`);
  return lines.join("\n");
}

// ----------------------------------------------------------------------------- the widget
const INT_KEYS = ["batch", "layers", "heads", "kv_heads", "head_dim", "prefix_len", "encoder_hidden"];
const PRESET_KEYS = ["layers", "heads", "kv_heads", "head_dim", "hidden"];

const CSS = `
.ptutor-kvx { font-size: 13px; max-width: 100%; }
.ptutor-kvx label { display: flex; align-items: center; gap: 6px; margin: 2px 0; }
.ptutor-kvx .ptutor-kvx-name { width: 100px; text-align: right; flex: none; }
.ptutor-kvx-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(310px, 1fr)); column-gap: 12px; }
.ptutor-kvx input[type=range] { width: 130px; min-width: 0; }
.ptutor-kvx input[type=number] { width: 64px; }
.ptutor-kvx select.ptutor-kvx-preset { width: 360px; max-width: calc(100% - 110px); }
.ptutor-kvx-source { color: #555; margin: 2px 0 6px 106px; }
.ptutor-kvx-report { font-size: 12px; line-height: 1.3; margin-top: 8px; white-space: pre; overflow-x: auto; }
`;

/** The describe_prefix arguments the model holds now. */
export function modelArgs(get) {
  const args = { projection: Boolean(get("projection")), dtype: get("dtype"), hidden: get("hidden") };
  for (const k of INT_KEYS) args[k] = Number(get(k));
  return args;
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function render({ model, el: root }) {
  const get = (k) => model.get(k);
  const save = (changes) => {
    for (const [k, v] of Object.entries(changes)) model.set(k, v);
    try {
      model.save_changes(); // no kernel on a static page: nothing to sync, the page still updates
    } catch (err) {
      /* static page without a comm */
    }
  };
  const presets = get("presets") || {};
  const inputs = {}; // trait name -> the inputs that show it

  const presetSelect = el("select", { className: "ptutor-kvx-preset", dataset: { name: "preset" } },
    Object.keys(presets).map((label) => el("option", { value: label, textContent: label })));
  presetSelect.addEventListener("change", () => {
    const p = presets[presetSelect.value] || {};
    const changes = { preset: presetSelect.value };
    for (const k of PRESET_KEYS) if (p[k] !== undefined) changes[k] = p[k];
    save(changes);
  });
  inputs.preset = [presetSelect];
  const source = el("div", { className: "ptutor-kvx-source" });

  const grid = el("div", { className: "ptutor-kvx-grid" });
  for (const [name, label, lo, hi, step] of get("sliders") || []) {
    const range = el("input", { type: "range", min: lo, max: hi, step, dataset: { name } });
    const number = el("input", { type: "number", min: lo, max: hi, step, dataset: { name } });
    const snap = (raw) => {
      let v = Math.round(Number(raw));
      if (!Number.isFinite(v)) return get(name);
      v = lo + Math.round((v - lo) / step) * step;
      return Math.min(hi, Math.max(lo, v));
    };
    range.addEventListener("input", () => save({ [name]: snap(range.value) }));
    number.addEventListener("change", () => save({ [name]: snap(number.value) }));
    inputs[name] = [range, number];
    grid.append(el("label", {}, [el("span", { className: "ptutor-kvx-name", textContent: label }), range, number]));
  }
  const projection = el("input", { type: "checkbox", dataset: { name: "projection" } });
  projection.addEventListener("change", () => save({ projection: projection.checked }));
  inputs.projection = [projection];
  grid.append(el("label", {}, [el("span", { className: "ptutor-kvx-name", textContent: "projection (MLP)" }), projection]));
  const dtype = el("select", { dataset: { name: "dtype" } },
    Object.keys(get("dtype_sizes") || {}).map((d) => el("option", { value: d, textContent: d })));
  dtype.addEventListener("change", () => save({ dtype: dtype.value }));
  inputs.dtype = [dtype];
  grid.append(el("label", {}, [el("span", { className: "ptutor-kvx-name", textContent: "dtype" }), dtype]));

  const report = el("pre", { className: "ptutor-kvx-report" });
  root.append(el("style", { textContent: CSS }),
              el("div", { className: "ptutor-kvx" }, [
                el("label", {}, [el("span", { className: "ptutor-kvx-name", textContent: "architecture" }), presetSelect]),
                source, grid, report]));

  const refresh = () => {
    for (const [name, nodes] of Object.entries(inputs)) {
      for (const node of nodes) {
        if (node.type === "checkbox") node.checked = Boolean(get(name));
        else if (String(node.value) !== String(get(name))) node.value = get(name);
      }
    }
    const p = presets[get("preset")];
    source.innerHTML = "";
    source.append(el("small", { textContent: p ? `numbers from: ${p.source}` : "" }));
    let text;
    try {
      text = describePrefix(modelArgs(get), get("dtype_sizes") || {});
    } catch (err) {
      text = `!! ${err.message}`;
    }
    report.textContent = text;
  };
  const keys = ["preset", "projection", "dtype", "hidden", ...INT_KEYS];
  for (const k of keys) model.on(`change:${k}`, refresh);
  refresh();
  return () => {
    for (const k of keys) model.off(`change:${k}`, refresh);
  };
}

export default { render };
