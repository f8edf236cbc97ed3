// Pointer interactions (hover values, click to explain or draw points), the explain panel, uploads.
"use strict";

const Views = (() => {
  const tooltip = () => $("tooltip");

  function planePoint(event) {
    const canvas = $("boundary"), box = canvas.getBoundingClientRect();
    const [u0, u1, v0, v1] = state.data.extent;
    const x = (event.clientX - box.left) / box.width, y = (event.clientY - box.top) / box.height;
    return { u: u0 + x * (u1 - u0), v: v1 - y * (v1 - v0), x, y };
  }

  function show(event, html) {
    const tip = tooltip();
    tip.innerHTML = html;
    tip.hidden = false;
    tip.style.left = `${event.pageX + 12}px`;
    tip.style.top = `${event.pageY + 12}px`;
  }

  function boundaryHover(event) {
    if (!state.frame || !state.data) return;
    const point = planePoint(event);
    const boundary = state.frame.boundary, n = boundary.resolution;
    const index = Math.min(n - 1, Math.floor(point.y * n)) * n + Math.min(n - 1, Math.floor(point.x * n));
    const p = Draw.decode(boundary.p, Uint8Array)[index] / 255;
    const [a, b] = state.data.axes;
    let value;
    if (state.data.task === "binary") value = t("hover.probability", { label: state.data.classes[1], value: p.toFixed(3) });
    else if (state.data.task === "multiclass") {
      const cls = Draw.decode(boundary.class, Uint8Array)[index];
      value = t("hover.class", { label: state.data.classes[cls], value: p.toFixed(3) });
    } else value = t("hover.prediction", { value: (boundary.low + p * (boundary.high - boundary.low)).toFixed(3) });
    show(event, `${a} = ${point.u.toFixed(3)}, ${b} = ${point.v.toFixed(3)}<br>${value}`);
  }

  function nearestPoint(point) {
    // the nearest drawn point (train, then test) within 8 pixels: [split, index]
    const [u0, u1, v0, v1] = state.data.extent;
    const scaleU = 400 / (u1 - u0), scaleV = 400 / (v1 - v0);
    let best = null, bestDistance = 8;
    for (const split of ["train", "test"]) {
      const points = state.data.points[split];
      for (let i = 0; i < points.u.length; i++) {
        const distance = Math.hypot((points.u[i] - point.u) * scaleU, (points.v[i] - point.v) * scaleV);
        if (distance < bestDistance) { bestDistance = distance; best = { split, index: i }; }
      }
    }
    return best;
  }

  function boundaryClick(event) {
    if (!state.data) return;
    const point = planePoint(event);
    if (state.ui.mode !== "draw") { Explain.ask(point.u, point.v); return; }
    if (state.settings.dataset === "upload" || state.data.task === "regression") { showMessage(t("error.drawing")); return; }
    const s = state.settings;
    if (event.shiftKey) {
      const nearest = nearestPoint(point);
      if (!nearest) return;
      // each point carries its origin: >= 0 an index of the generated data, < 0 the drawn point -1 - k
      const origin = state.data.points[nearest.split].index[nearest.index];
      if (origin < 0) s.added = s.added.filter((_, k) => k !== -1 - origin);
      else s.removed = [...s.removed, origin].sort((a, b) => a - b);
    } else {
      s.added = [...s.added, { u: +point.u.toFixed(3), v: +point.v.toFixed(3), label: state.ui.drawClass }];
    }
    settingsChanged();
  }

  function diagramHover(event) {
    const geometry = state.geometry;
    if (!geometry) return;
    const canvas = $("diagram"), box = canvas.getBoundingClientRect();
    const x = (event.clientX - box.left) * canvas.width / box.width, y = (event.clientY - box.top) * canvas.height / box.height;
    const sizes = state.data.sizes;
    for (const node of geometry.nodes) {
      if (x >= node.x && x <= node.x + node.size && y >= node.y && y <= node.y + node.size) {
        if (node.c === 0) { show(event, t("hover.input", { name: state.data.inputs[node.i] })); return; }
        const layer = geometry.weights[node.c - 1];
        const bias = layer.b[node.i].toFixed(4);
        const kind = node.c === sizes.length - 1 ? t("hover.output", { unit: node.i + 1 })
          : t("hover.unit", { unit: node.i + 1, layer: node.c });
        const scale = node.c < sizes.length - 1 ? `<br>${t("hover.range", { value: geometry.units.layers[node.c - 1].scale[node.i].toFixed(3) })}` : "";
        show(event, `${kind}<br>${t("hover.bias", { value: bias })}${scale}`);
        return;
      }
    }
    let best = null, bestDistance = 4;
    for (const edge of geometry.edges) {
      const dx = edge.x1 - edge.x0, dy = edge.y1 - edge.y0;
      const along = Math.max(0, Math.min(1, ((x - edge.x0) * dx + (y - edge.y0) * dy) / (dx * dx + dy * dy)));
      const distance = Math.hypot(edge.x0 + along * dx - x, edge.y0 + along * dy - y);
      if (distance < bestDistance) { bestDistance = distance; best = edge; }
    }
    if (best) {
      const from = best.k === 0 ? state.data.inputs[best.i] : t("hover.unitshort", { layer: best.k, unit: best.i + 1 });
      show(event, t("hover.weight", { from, layer: best.k + 1, unit: best.j + 1, value: best.value.toFixed(4) }));
    } else tooltip().hidden = true;
  }

  function wire() {
    $("boundary").addEventListener("mousemove", boundaryHover);
    $("boundary").addEventListener("mouseleave", () => { tooltip().hidden = true; });
    $("boundary").addEventListener("click", boundaryClick);
    $("diagram").addEventListener("mousemove", diagramHover);
    $("diagram").addEventListener("mouseleave", () => { tooltip().hidden = true; });
  }

  return { wire };
})();

const Explain = (() => {
  const number = (value, digits = 4) => (value >= 0 ? "+" : "") + value.toFixed(digits);
  const vector = (values) => `[${values.map((v) => number(v)).join(", ")}]`;
  const MAX_ROWS = 8;

  async function ask(u, v) {
    state.explained = { u, v };
    try {
      const response = await request("POST", `/sessions/${state.session}/explain`, { u, v });
      state.explanation = await response.json();
      show(state.explanation);
      render();
    } catch (error) {
      showMessage(t("error.explain", { detail: error.message }));
    }
  }

  function matrix(name, rows) {
    const shown = rows.slice(0, MAX_ROWS).map((row, r) => `<tr><th>${t("explain.unit", { unit: r + 1 })}</th><td>${vector(row.slice(0, 12))}${row.length > 12 ? " …" : ""}</td></tr>`);
    const more = rows.length > MAX_ROWS ? `<tr><td colspan="2">${t("explain.more", { count: rows.length - MAX_ROWS })}</td></tr>` : "";
    return `<div class="matrix"><div class="small">${name}</div><table>${shown.join("")}${more}</table></div>`;
  }

  function show(e) {
    const body = $("explain-body");
    const inputs = Object.entries(e.input).map(([name, value]) => `${name} = ${typeof value === "number" ? value.toFixed(4) : value}`).join(", ");
    const parts = [`<p data-testid="explain-input"><b>${t("explain.input")}</b> ${inputs}</p>`];
    if (e.inputs.join() !== Object.keys(e.input).join()) parts.push(`<p>${t("explain.encoded")} a0 = ${vector(e.encoded)} <span class="small">(${e.inputs.join(", ")})</span></p>`);
    parts.push(`<h3>${t("explain.forward")}</h3><p class="formula">z = W a + b, a = f(z)</p>`);
    const last = e.layers.length - 1;
    e.layers.forEach((layer, k) => {
      const kind = k < last ? t("explain.hidden", { layer: k + 1, activation: e.activation }) : t("explain.outputlayer");
      parts.push(`<div class="layer"><h4>${t("explain.layer", { layer: k + 1 })}: ${kind}</h4>${matrix("W", layer.W)}
        <p>b = ${vector(layer.b)}</p><p>a${k} = ${vector(layer.a_in)}</p><p data-testid="explain-z${k + 1}">z = W a${k} + b = ${vector(layer.z)}</p>
        ${k < last ? `<p>a${k + 1} = f(z) = ${vector(e.hidden_outputs[k])}</p>` : ""}</div>`);
    });
    const source = e.label_given ? t("explain.labelgiven") : t("explain.labelpredicted");
    let output;
    if (e.task === "binary") output = t("explain.outputbinary", { label: e.classes[1], value: e.output[0].toFixed(6) });
    else if (e.task === "multiclass") output = t("explain.outputmulticlass", { value: vector(e.output) });
    else output = t("explain.outputregression", { value: number(e.output[0], 6) });
    parts.push(`<p class="result" data-testid="explain-output">${output}</p>`);
    parts.push(`<p class="result" data-testid="explain-loss">${t("explain.loss", { label: e.label, source, value: e.loss.toFixed(6) })}</p>`);
    parts.push(`<h3>${t("explain.backward")}</h3><p data-testid="explain-error">${t("explain.outputerror")} dL/dz = ${vector(e.output_error)}</p>`);
    for (let k = last; k >= 0; k--) {
      parts.push(`<div class="layer"><h4>${t("explain.layer", { layer: k + 1 })}: dL/dW = dL/dz (a${k})<sup>T</sup>, dL/db = dL/dz</h4>
        ${matrix("dL/dW", e.gradients[k].W)}<p data-testid="explain-db${k + 1}">dL/db = ${vector(e.gradients[k].b)}</p></div>`);
    }
    parts.push(`<p class="small" data-testid="explain-check">${t("explain.check", { value: e.autograd_difference.toExponential(1) })}</p>`);
    parts.push(`<p class="small">${t("explain.step", { lr: e.learning_rate, epoch: e.epoch })}</p>`);
    body.innerHTML = parts.join("");
    $("explain").hidden = false;
  }

  return { ask, show };
})();

const Uploads = (() => {
  function fill(select, names, value) {
    select.innerHTML = "";
    for (const name of names) {
      const option = document.createElement("option");
      option.value = name; option.textContent = name;
      select.appendChild(option);
    }
    if (value) select.value = value;
  }

  function columnsChosen() {
    const info = state.upload;
    const numeric = info.columns.filter((c) => c.numeric).map((c) => c.name);
    const s = state.settings;
    if (!s.target || !info.columns.some((c) => c.name === s.target)) {
      // the last column with few distinct values is the likeliest target
      const few = info.columns.filter((c) => c.distinct <= 20);
      s.target = (few.length ? few[few.length - 1] : info.columns[info.columns.length - 1]).name;
    }
    const candidates = numeric.filter((name) => name !== s.target);
    if (candidates.length < 2) return false;
    if (!s.draw || s.draw.some((name) => !candidates.includes(name)) || s.draw[0] === s.draw[1]) s.draw = candidates.slice(0, 2);
    fill($("target"), info.columns.map((c) => c.name), s.target);
    fill($("drawx"), candidates, s.draw[0]);
    fill($("drawy"), candidates, s.draw[1]);
    $("upload-info").textContent = t("upload.info", { name: info.name, rows: info.rows, columns: info.columns.length });
    return true;
  }

  async function send(file) {
    try {
      const response = await request("POST", `/uploads?name=${encodeURIComponent(file.name)}`, await file.arrayBuffer(), true);
      state.upload = await response.json();
      state.settings.dataset = "upload"; state.settings.upload = state.upload.id;
      state.settings.added = []; state.settings.removed = []; state.settings.draw = null; state.settings.target = null;
      if (!columnsChosen()) throw new Error(t("error.fewnumeric"));
      settingsChanged();
    } catch (error) {
      showMessage(t("error.upload", { detail: error.message }));
    }
  }

  async function restore() {
    try {
      const response = await request("GET", `/uploads/${state.settings.upload}`);
      state.upload = await response.json();
      columnsChosen();
      syncControls();
    } catch (error) {
      showMessage(t("error.upload", { detail: error.message }));
    }
  }

  function wire() {
    $("file").addEventListener("change", () => { if ($("file").files.length) send($("file").files[0]); });
    $("target").addEventListener("change", () => { state.settings.target = $("target").value; state.settings.draw = null; columnsChosen(); settingsChanged(); });
    $("drawx").addEventListener("change", () => { state.settings.draw = [$("drawx").value, state.settings.draw[1]]; settingsChanged(); });
    $("drawy").addEventListener("change", () => { state.settings.draw = [state.settings.draw[0], $("drawy").value]; settingsChanged(); });
    $("use-all").addEventListener("change", () => { state.settings.use_all = $("use-all").checked; settingsChanged(); });
    $("view").addEventListener("change", () => { state.settings.view = $("view").value; settingsChanged(); });
  }

  return { wire, restore };
})();
