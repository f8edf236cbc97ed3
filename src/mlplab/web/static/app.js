// The playground page: settings in the address, one session per tab, frames over a WebSocket.
"use strict";

const API = "/api/playground";
const $ = (id) => document.getElementById(id);
const DEFAULTS = { dataset: "xor-blobs", upload: null, target: null, draw: null, use_all: false, view: "slice",
  n_points: 100, test_ratio: 0.2, noise: null, classes: null, added: [], removed: [], inputs: ["x1", "x2"],
  hidden: [5], activation: "relu", task: "auto", optimizer: "sgd", lr: 0.03, batch: null, l1: 0, l2: 0,
  dropout: 0, seed: 0 };
const UI_DEFAULTS = { speed: 10, showTest: false, discretize: false, mode: "explain", drawClass: 0 };

const state = { settings: { ...DEFAULTS }, ui: { ...UI_DEFAULTS }, session: null, socket: null, data: null,
  frame: null, history: [], playing: false, explained: null, datasets: [], limits: {}, toggles: [], upload: null,
  geometry: null, frames: 0, firstFrameAt: null };

// --- the address holds every setting ---------------------------------------------------------------
function readAddress() {
  const query = new URLSearchParams(location.search);
  const s = { ...DEFAULTS };
  const number = (key) => (query.has(key) && query.get(key) !== "" ? Number(query.get(key)) : undefined);
  for (const key of ["dataset", "upload", "target", "view", "activation", "task", "optimizer"]) if (query.has(key)) s[key] = query.get(key);
  for (const key of ["n_points", "test_ratio", "noise", "classes", "lr", "batch", "l1", "l2", "dropout", "seed"]) {
    const value = number(key);
    if (value !== undefined && !Number.isNaN(value)) s[key] = value;
  }
  if (query.has("draw")) s.draw = query.get("draw").split(",");
  if (query.has("use_all")) s.use_all = query.get("use_all") === "1";
  if (query.has("inputs")) s.inputs = query.get("inputs").split(",").filter(Boolean);
  if (query.has("hidden")) s.hidden = query.get("hidden").split(",").filter(Boolean).map(Number);
  if (query.has("removed")) s.removed = query.get("removed").split(",").filter(Boolean).map(Number);
  if (query.has("added")) {
    s.added = query.get("added").split(";").filter(Boolean).map((p) => {
      const [u, v, label] = p.split(":").map(Number);
      return { u, v, label };
    });
  }
  const ui = { ...UI_DEFAULTS };
  if (query.has("speed")) ui.speed = Number(query.get("speed")) || UI_DEFAULTS.speed;
  ui.showTest = query.get("showtest") === "1";
  ui.discretize = query.get("discretize") === "1";
  return { settings: s, ui, lang: query.get("lang") };
}

function writeAddress() {
  const s = state.settings, query = new URLSearchParams();
  for (const [key, value] of Object.entries(s)) {
    if (JSON.stringify(value) === JSON.stringify(DEFAULTS[key])) continue;
    if (key === "added") query.set(key, value.map((p) => `${+p.u.toFixed(3)}:${+p.v.toFixed(3)}:${p.label}`).join(";"));
    else if (key === "use_all") query.set(key, value ? "1" : "0");
    else if (Array.isArray(value)) query.set(key, value.join(","));
    else query.set(key, value === null ? "" : value);
  }
  if (state.ui.speed !== UI_DEFAULTS.speed) query.set("speed", state.ui.speed);
  if (state.ui.showTest) query.set("showtest", "1");
  if (state.ui.discretize) query.set("discretize", "1");
  query.set("lang", I18n.language);
  history.replaceState(null, "", `${location.pathname}?${query}`);
}

// --- talking to the server -------------------------------------------------------------------------
async function request(method, path, body, raw) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.body = raw ? body : JSON.stringify(body);
    if (!raw) options.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(API + path, options);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (error) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return response.status === 204 ? null : response;
}

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = `message ${kind}`;
  box.hidden = !text;
}

function payload() {
  const s = { ...state.settings };
  if (s.dataset !== "upload") { s.upload = null; s.target = null; s.draw = null; }
  return s;
}

async function start() {
  try {
    const response = await request("POST", "/sessions", payload());
    state.session = (await response.json()).id;
    connect();
    showMessage("");
  } catch (error) {
    showMessage(t("error.settings", { detail: error.message }));
  }
}

let pending = null;
function settingsChanged() {
  writeAddress();
  syncControls();
  clearTimeout(pending);
  pending = setTimeout(applySettings, 120);
}

async function applySettings() {
  if (!state.session) return start();
  try {
    await request("PUT", `/sessions/${state.session}`, payload());
    showMessage("");
  } catch (error) {
    showMessage(t("error.settings", { detail: error.message }));
  }
}

function connect() {
  const protocol = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${protocol}://${location.host}${API}/sessions/${state.session}/stream`);
  state.socket = socket;
  socket.onopen = () => send({ type: "speed", value: state.ui.speed });
  socket.onmessage = (event) => receive(JSON.parse(event.data));
  socket.onclose = () => { if (state.socket === socket) { state.session = null; setPlaying(false); } };
}

function send(message) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(message));
}

function receive(message) {
  if (message.type === "data") {
    state.data = message;
    state.history = [];
    state.explained = null;
    $("explain").hidden = true;
    setPlaying(false);
    buildInputs(); syncControls();
    buildLayerButtons();
    fillDrawClasses();
    axisLabels();
  } else if (message.type === "frame") {
    state.frame = message;
    requestAnimationFrame(() => { render(); send({ type: "ack" }); });
  } else if (message.type === "error") {
    if (message.key === "diverged") setPlaying(false);
    showMessage(message.key === "diverged" ? t("error.diverged", { detail: message.message }) : message.message);
  }
}

// --- drawing a frame -------------------------------------------------------------------------------
function render() {
  const frame = state.frame;
  if (!frame || !state.data) return;
  const metrics = frame.metrics;
  $("epoch").textContent = frame.epoch.toLocaleString("en-US").padStart(7, "0");
  const format = (value) => (value == null ? "–" : value.toFixed(3));
  $("train-loss").textContent = format(metrics.train_loss);
  $("test-loss").textContent = format(metrics.test_loss);
  const regression = state.data.task === "regression";
  $("train-acc").textContent = regression ? "–" : format(metrics.train_accuracy);
  $("test-acc").textContent = format(regression ? metrics.test_r2 : metrics.test_accuracy);
  const last = state.history[state.history.length - 1];
  if (!last || last.epoch !== frame.epoch) state.history.push({ epoch: frame.epoch, train: metrics.train_loss, test: metrics.test_loss });
  Draw.boundary($("boundary"), { ...state.ui, data: state.data, explained: state.explained }, frame);
  state.geometry = Draw.network($("diagram"), { ...state.ui, data: state.data }, frame);
  Draw.chart($("chart"), state.history);
  state.frames += 1;
  if (state.firstFrameAt === null) {
    state.firstFrameAt = performance.now();
    document.body.dataset.firstBoundaryMs = Math.round(state.firstFrameAt);
  }
  document.body.dataset.frames = state.frames;
  document.body.dataset.epoch = frame.epoch;
}

function axisLabels() {
  $("axis-u").textContent = state.data.axes[0];
  $("axis-v").textContent = state.data.axes[1];
}

// --- controls --------------------------------------------------------------------------------------
function setPlaying(playing) {
  state.playing = playing;
  $("play").innerHTML = playing ? "&#10074;&#10074;" : "&#9654;";
  $("play").title = t(playing ? "tip.pause" : "tip.play");
  $("play").classList.toggle("playing", playing);
}

function syncControls() {
  const s = state.settings;
  for (const id of ["lr", "activation", "task", "optimizer", "l1", "l2", "dropout"]) $(id).value = String(s[id]);
  $("batch").value = s.batch === null ? "" : String(s.batch);
  $("seed").value = s.seed;
  $("dataset").value = s.dataset;
  $("classes").value = s.classes === null ? "" : String(s.classes);
  const info = state.datasets.find((d) => d.name === s.dataset);
  const noise = s.noise ?? (info ? info.noise : 0);
  $("noise").value = noise; $("noise-value").textContent = Number(noise).toFixed(2);
  $("points").value = s.n_points; $("points-value").textContent = s.n_points;
  $("ratio").value = s.test_ratio; $("ratio-value").textContent = `${Math.round(s.test_ratio * 100)}%`;
  $("speed").value = String(state.ui.speed);
  $("show-test").checked = state.ui.showTest;
  $("discretize").checked = state.ui.discretize;
  const uploading = s.dataset === "upload";
  $("upload-box").hidden = !uploading;
  $("generated-box").hidden = uploading;
  $("regenerate").hidden = uploading;
  if (uploading && state.upload) {
    $("target").value = s.target || ""; $("drawx").value = (s.draw || [])[0] || ""; $("drawy").value = (s.draw || [])[1] || "";
    $("use-all").checked = s.use_all; $("view").value = s.view;
  }
  document.querySelectorAll("#inputs button").forEach((button) => {
    button.classList.toggle("on", s.inputs.includes(button.dataset.term));
  });
  $("layer-count").textContent = t("label.layers", { count: s.hidden.length });
}

function buildInputs() {
  const box = $("inputs");
  box.innerHTML = "";
  for (const term of state.toggles) {
    const button = document.createElement("button");
    button.dataset.term = term;
    button.textContent = termLabel(term);
    button.title = t("tip.feature", { term });
    button.addEventListener("click", () => {
      const inputs = state.settings.inputs;
      const next = inputs.includes(term) ? inputs.filter((x) => x !== term) : state.toggles.filter((x) => x === term || inputs.includes(x));
      if (next.length === 0) { showMessage(t("error.noinputs")); return; }
      state.settings.inputs = next;
      settingsChanged();
    });
    box.appendChild(button);
  }
}

// x1, x2 stand for the two drawn columns of an upload
function termLabel(term) {
  let label = term.replace("^2", "²").replace("*", "·");
  const draw = state.settings.draw;
  if (state.settings.dataset === "upload" && draw) label = label.replaceAll("x1", "\u0000").replaceAll("x2", draw[1]).replaceAll("\u0000", draw[0]);
  return label;
}

function buildLayerButtons() {
  const box = $("layer-buttons");
  box.innerHTML = "";
  const canvas = $("diagram");
  const sizes = state.data ? state.data.sizes : [2, ...state.settings.hidden, 1];
  const geometry = Draw.layout(canvas, sizes);
  state.settings.hidden.forEach((units, k) => {
    const group = document.createElement("div");
    group.className = "layer-control";
    group.style.left = `${geometry.positions[k + 1][0].x - 34}px`;
    const plus = document.createElement("button"), minus = document.createElement("button");
    plus.textContent = "+"; minus.textContent = "−"; plus.className = minus.className = "mini";
    plus.title = t("tip.addunit"); minus.title = t("tip.removeunit");
    plus.addEventListener("click", () => changeUnits(k, +1));
    minus.addEventListener("click", () => changeUnits(k, -1));
    const label = document.createElement("span");
    label.className = "small";
    label.textContent = t("label.units", { count: units });
    group.append(plus, minus, label);
    box.appendChild(group);
  });
}

function changeUnits(k, delta) {
  const hidden = [...state.settings.hidden];
  const next = hidden[k] + delta;
  if (next < 1) return;
  if (next > state.limits.units) { showMessage(t("error.maxunits", { count: state.limits.units })); return; }
  hidden[k] = next;
  state.settings.hidden = hidden;
  settingsChanged();
}

function fillDrawClasses() {
  const select = $("draw-class");
  select.innerHTML = "";
  (state.data.classes || []).forEach((name, index) => {
    const option = document.createElement("option");
    option.value = index;
    option.textContent = t("label.class", { name });
    select.appendChild(option);
  });
  select.value = String(Math.min(state.ui.drawClass, (state.data.classes || [0]).length - 1));
}

function wireControls() {
  $("play").addEventListener("click", () => { setPlaying(!state.playing); send({ type: state.playing ? "play" : "pause" }); });
  $("step").addEventListener("click", () => { setPlaying(false); send({ type: "step" }); });
  $("reset").addEventListener("click", () => { setPlaying(false); applySettings(); });
  $("speed").addEventListener("change", () => { state.ui.speed = Number($("speed").value); send({ type: "speed", value: state.ui.speed }); writeAddress(); });
  const numeric = { lr: Number, l1: Number, l2: Number, dropout: Number };
  for (const id of ["lr", "activation", "task", "optimizer", "l1", "l2", "dropout"]) {
    $(id).addEventListener("change", () => { state.settings[id] = numeric[id] ? numeric[id]($(id).value) : $(id).value; settingsChanged(); });
  }
  $("batch").addEventListener("change", () => { state.settings.batch = $("batch").value === "" ? null : Number($("batch").value); settingsChanged(); });
  $("seed").addEventListener("change", () => { state.settings.seed = Math.max(0, Math.floor(Number($("seed").value) || 0)); settingsChanged(); });
  $("dataset").addEventListener("change", () => {
    const s = state.settings;
    s.dataset = $("dataset").value; s.noise = null; s.classes = null; s.added = []; s.removed = [];
    if (s.dataset === "upload" && !state.upload) { syncControls(); writeAddress(); $("file").click(); return; }
    settingsChanged();
  });
  $("classes").addEventListener("change", () => { state.settings.classes = $("classes").value === "" ? null : Number($("classes").value); state.settings.added = []; settingsChanged(); });
  $("noise").addEventListener("change", () => { state.settings.noise = Number($("noise").value); settingsChanged(); });
  $("noise").addEventListener("input", () => { $("noise-value").textContent = Number($("noise").value).toFixed(2); });
  $("points").addEventListener("change", () => { state.settings.n_points = Number($("points").value); state.settings.removed = []; settingsChanged(); });
  $("points").addEventListener("input", () => { $("points-value").textContent = $("points").value; });
  $("ratio").addEventListener("change", () => { state.settings.test_ratio = Number($("ratio").value); state.settings.removed = []; settingsChanged(); });
  $("regenerate").addEventListener("click", () => { state.settings.seed += 1; state.settings.added = []; state.settings.removed = []; settingsChanged(); });
  $("show-test").addEventListener("change", () => { state.ui.showTest = $("show-test").checked; writeAddress(); render(); });
  $("discretize").addEventListener("change", () => { state.ui.discretize = $("discretize").checked; writeAddress(); render(); });
  document.querySelectorAll("input[name=mode]").forEach((radio) => radio.addEventListener("change", () => { state.ui.mode = radio.value; }));
  $("draw-class").addEventListener("change", () => { state.ui.drawClass = Number($("draw-class").value); });
  $("add-layer").addEventListener("click", () => {
    if (state.settings.hidden.length >= state.limits.hidden_layers) { showMessage(t("error.maxlayers", { count: state.limits.hidden_layers })); return; }
    state.settings.hidden = [...state.settings.hidden, state.settings.hidden[state.settings.hidden.length - 1] || 4];
    settingsChanged();
  });
  $("remove-layer").addEventListener("click", () => { state.settings.hidden = state.settings.hidden.slice(0, -1); settingsChanged(); });
  $("download").addEventListener("click", () => { if (state.session) location.href = `${API}/sessions/${state.session}/run.zip`; });
  $("export").addEventListener("click", () => { if (state.session) location.href = `${API}/sessions/${state.session}/export.py`; });
  $("close-explain").addEventListener("click", () => { $("explain").hidden = true; state.explained = null; render(); });
  $("lang").addEventListener("change", async () => {
    await I18n.load($("lang").value);
    writeAddress(); buildInputs(); syncControls(); if (state.data) { buildLayerButtons(); fillDrawClasses(); }
    setPlaying(state.playing); fillDatasets(); if (state.explanation) Explain.show(state.explanation);
  });
  Uploads.wire();
  Views.wire();
}

function fillDatasets() {
  const select = $("dataset");
  select.innerHTML = "";
  for (const info of state.datasets) {
    const option = document.createElement("option");
    option.value = info.name; option.textContent = info.name; option.title = t(`dataset.${info.name}`);
    select.appendChild(option);
  }
  const upload = document.createElement("option");
  upload.value = "upload"; upload.textContent = t("dataset.upload");
  select.appendChild(upload);
  select.value = state.settings.dataset;
}

async function main() {
  const address = readAddress();
  state.settings = address.settings; state.ui = address.ui;
  const [language, datasets] = await Promise.all([I18n.load(address.lang),
    fetch(`${API}/datasets`).then((r) => r.json())]);
  $("lang").value = language;
  state.datasets = datasets.datasets; state.limits = datasets.limits; state.toggles = datasets.inputs;
  fillDatasets(); buildInputs(); wireControls(); syncControls(); writeAddress();
  if (state.settings.dataset === "upload") await Uploads.restore();
  await start();
}

main();
