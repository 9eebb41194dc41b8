// Habla's ops board (/ops): live charts of the pipeline's metrics, like a small Grafana board.
//
// Every 2 s it asks the gateway for the points it has not seen yet (GET api/ops?since=T, with
// the phone app's token: same storage key, `#token=` in the address works too) and redraws:
// the health badge with its reasons, the processes and whether they answer, stat tiles, and
// uPlot charts (the gateway serves uPlot at vendor/; without it the board says so and keeps
// the badge and tiles). The gateway keeps 15 minutes of points (habla_gateway/ops.py); so
// does this page.

import { el } from "./dom.js";

const TOKEN_KEY = "habla.token"; // the phone app's (app.js)
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

// --- formatting ----------------------------------------------------------------------------

const fmt = {
  s(v) {
    if (v === null || v === undefined) return "—";
    if (v < 1) return `${Math.round(v * 1000)} ms`;
    return `${v.toFixed(v < 10 ? 1 : 0)} s`;
  },
  bytes(v) {
    if (v === null || v === undefined) return "—";
    if (v >= 2 ** 30) return `${(v / 2 ** 30).toFixed(2)} GB`;
    return `${Math.round(v / 2 ** 20)} MB`;
  },
  pct(v) {
    return v === null || v === undefined ? "—" : `${v.toFixed(v < 10 ? 1 : 0)} %`;
  },
  rate(v) {
    return v === null || v === undefined ? "—" : `${v.toFixed(v < 10 ? 2 : 1)}/s`;
  },
  n(v) {
    return v === null || v === undefined ? "—" : String(Math.round(v));
  },
  clock(t) {
    return new Date(t * 1000).toLocaleTimeString([], { hourCycle: "h23", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  },
};

// Each chart's unit: how a value reads in the legend and on the axis, and the axis steps.
const MB = 2 ** 20;
const STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];
const trim = (v, digits) => String(+v.toFixed(digits));
const UNITS = {
  s: { value: fmt.s, tick: (v) => (v === 0 ? "0" : v < 1 ? `${Math.round(v * 1000)} ms` : `${trim(v, 1)} s`) },
  count: { value: fmt.n, tick: (v) => trim(v, 0), incrs: STEPS },
  rate: { value: fmt.rate, tick: (v) => `${trim(v, 2)}/s` },
  pct: { value: fmt.pct, tick: (v) => `${trim(v, 1)} %` },
  bytes: { value: fmt.bytes, tick: (v) => (v >= 2 ** 30 ? `${trim(v / 2 ** 30, 1)} GB` : `${trim(v / MB, 0)} MB`), incrs: STEPS.map((n) => n * MB) },
};

// --- what is drawn -------------------------------------------------------------------------

const STAGES = {
  onset_to_first_partial: "onset → first caption",
  window_to_partial_delivered: "window → caption on phone",
  speech_end_to_transcript_delivered: "end → transcript on phone",
  speech_end_to_translation_delivered: "end → translation on phone",
  window_to_asr_partial: "window → asr partial",
  speech_end_to_asr_final: "end → asr final",
  window_to_translation_partial: "window → rough translation",
  speech_end_to_translation_final: "end → translation final",
  speech_end_to_first_audio: "end → first spoken audio",
  speech_end_to_tutor_reply: "end → practice reply",
  speech_end_to_audio_delivered: "end → spoken audio on phone",
};
// what the phone sees (the first stage is asr's, but it is the caption the user waits for)
const PHONE_STAGES = [
  "onset_to_first_partial",
  "window_to_partial_delivered",
  "speech_end_to_transcript_delivered",
  "speech_end_to_translation_delivered",
  "speech_end_to_audio_delivered",
];
const SERVICE_STAGES = Object.keys(STAGES).filter((s) => !PHONE_STAGES.includes(s));

// Grafana's classic palette; each name keeps its colour across every chart
const PALETTE = ["#73bf69", "#f2cc0c", "#5794f2", "#ff780a", "#b877d9", "#37872d", "#fade2a", "#8ab8ff", "#f2495c", "#1f60c4"];
const FIXED = {
  recorder: "#8ab8ff",
  ingest: "#73bf69",
  diarize: "#b877d9",
  asr: "#5794f2",
  translate: "#ff780a",
  vocab: "#fade2a",
  tts: "#f2495c",
  gateway: "#f2cc0c",
  worker: "#9fa7b3",
  [PHONE_STAGES[0]]: "#73bf69",
  [PHONE_STAGES[1]]: "#8ab8ff",
  [PHONE_STAGES[2]]: "#5794f2",
  [PHONE_STAGES[3]]: "#ff780a",
  [PHONE_STAGES[4]]: "#f2495c",
  [SERVICE_STAGES[0]]: "#8ab8ff",
  [SERVICE_STAGES[1]]: "#5794f2",
  [SERVICE_STAGES[2]]: "#fade2a",
  [SERVICE_STAGES[3]]: "#ff780a",
};
const colours = new Map(Object.entries(FIXED));
function colour(name) {
  if (!colours.has(name)) colours.set(name, PALETTE[colours.size % PALETTE.length]);
  return colours.get(name);
}

// processes in the order audio flows through them (others after, by name)
const FLOW = ["gateway", "ingest", "diarize", "asr", "translate", "tts", "recorder", "vocab", "worker"];
const flowRank = (name) => (FLOW.includes(name) ? FLOW.indexOf(name) : FLOW.length);

/** Each key of `pick(point)` (an object) as a line: [{key, values}], in the pipeline's order. */
function lines(points, pick) {
  const keys = new Set();
  const rows = points.map((p) => {
    const row = pick(p) || {};
    for (const k of Object.keys(row)) keys.add(k);
    return row;
  });
  return [...keys]
    .sort((a, b) => flowRank(a) - flowRank(b) || a.localeCompare(b))
    .map((key) => ({ key, values: rows.map((row) => (row[key] ?? null)) }));
}

function percentiles(stages) {
  return (points) => {
    const out = [];
    for (const stage of stages) {
      if (!points.some((p) => p.latency[stage])) continue;
      for (const [i, q] of [
        [0, "p50"],
        [1, "p95"],
      ]) {
        out.push({
          key: `${STAGES[stage]} ${q}`,
          colour: colour(stage),
          dash: i === 1,
          values: points.map((p) => (p.latency[stage] ? p.latency[stage][i] : null)),
        });
      }
    }
    return out;
  };
}

const CHARTS = [
  {
    id: "latency-phone",
    title: "Latency to the phone",
    help: "p50 solid · p95 dashed · last 30 s",
    unit: UNITS.s,
    series: percentiles(PHONE_STAGES),
    empty: "no speech in the last 15 minutes",
  },
  {
    id: "latency-stages",
    title: "Stage latency in the services",
    help: "p50 solid · p95 dashed · last 30 s",
    unit: UNITS.s,
    series: percentiles(SERVICE_STAGES),
    empty: "no speech in the last 15 minutes",
  },
  {
    id: "lag",
    title: "Backlog",
    help: "stream entries not yet delivered to each consumer group",
    unit: UNITS.count,
    series: (points) => lines(points, (p) => p.lag),
    empty: "no stream lag reported",
  },
  {
    id: "behind",
    title: "Behind",
    help: "how far behind live each consumer is",
    unit: UNITS.s,
    series: (points) => lines(points, (p) => p.behind),
    empty: "not reported by these services",
  },
  {
    id: "throughput",
    title: "Throughput",
    help: "messages handled per second (gateway: frames sent)",
    unit: UNITS.rate,
    series: (points) => lines(points, (p) => p.throughput),
    empty: "nothing handled yet",
  },
  {
    id: "errors",
    title: "Errors",
    help: "handler failures and dead letters per second",
    unit: UNITS.rate,
    series: (points) => [
      { key: "all services", colour: "#f2495c", values: points.map((p) => sum(Object.values(p.errors))) },
      ...lines(points, (p) => p.errors),
    ],
  },
  {
    id: "cpu",
    title: "CPU",
    help: "% of one core, per process",
    unit: UNITS.pct,
    series: (points) => lines(points, (p) => p.cpu),
    empty: "waiting for a second reading",
  },
  {
    id: "memory",
    title: "Memory",
    help: "resident memory per process",
    unit: UNITS.bytes,
    series: (points) => lines(points, (p) => p.rss),
  },
  {
    id: "gpu",
    title: "GPU",
    help: "memory used and utilisation",
    unit: UNITS.pct,
    max: 100,
    series: (points) =>
      points.some((p) => p.gpu)
        ? [
            {
              key: "memory used",
              colour: "#b877d9",
              values: points.map((p) => (p.gpu && p.gpu.total ? (100 * p.gpu.used) / p.gpu.total : null)),
            },
            { key: "utilisation", colour: "#73bf69", values: points.map((p) => (p.gpu ? 100 * p.gpu.util : null)) },
          ]
        : [],
    empty: "no GPU",
  },
];

const TILES = [
  { id: "sessions", label: "Sessions", note: "live", value: (last) => fmt.n(last.sessions), raw: (last) => last.sessions },
  { id: "sockets", label: "Sockets", note: "open", value: (last) => fmt.n(last.sockets), raw: (last) => last.sockets },
  {
    id: "behind",
    label: "Most behind",
    value: (last) => {
      const behind = Object.values(last.behind);
      return behind.length ? fmt.s(Math.max(...behind)) : `${fmt.n(sum(Object.values(last.lag)))}`;
    },
    note: (last) => (Object.keys(last.behind).length ? "of any consumer" : "entries waiting"),
    raw: (last) => (Object.keys(last.behind).length ? Math.max(...Object.values(last.behind)) : sum(Object.values(last.lag))),
    warn: (last) => Object.values(last.behind).some((v) => v >= 3),
  },
  { id: "transcript", label: "Speech end → transcript", stage: "speech_end_to_transcript_delivered" },
  { id: "translation", label: "Speech end → translation", stage: "speech_end_to_translation_delivered" },
  {
    id: "throughput",
    label: "Throughput",
    note: "messages / s, all services",
    value: (last) => fmt.rate(sum(Object.values(last.throughput))),
    raw: (last) => sum(Object.values(last.throughput)),
  },
];

function sum(values) {
  return values.reduce((a, b) => a + b, 0);
}

// --- state ---------------------------------------------------------------------------------

const board = {
  points: [],
  last: 0, // t of the newest point
  history: 900,
  charts: new Map(), // id -> {def, panel, body, plot, keys}
  timer: 0,
  token: localStorage.getItem(TOKEN_KEY) || "",
  polls: 0,
};
window.ops = board; // for the browser tests and debugging

function takeTokenFromUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    board.token = token.trim();
    localStorage.setItem(TOKEN_KEY, board.token);
    history.replaceState(null, "", location.pathname + location.search); // out of history and bookmarks
  }
}

// --- building the board --------------------------------------------------------------------

function buildTiles() {
  for (const t of TILES) {
    const value = el("span", { class: "tile-value", id: `tile-${t.id}-value`, text: "—" });
    const note = el("span", { class: "tile-note", id: `tile-${t.id}-note`, text: t.stage ? "p50, last 30 s" : "" });
    $("tiles").append(el("div", { class: "tile", id: `tile-${t.id}` }, el("span", { class: "tile-label", text: t.label }), value, note));
  }
}

function buildPanels() {
  for (const def of CHARTS) {
    const body = el("div", { class: "panel-body" });
    const empty = el("p", { class: "panel-empty", text: def.empty || "no data yet" });
    const panel = el(
      "section",
      { class: "panel", id: `panel-${def.id}`, "aria-label": def.title },
      el("header", { class: "panel-head" }, el("h2", { text: def.title }), el("span", { class: "panel-help", text: def.help })),
      body,
      empty,
    );
    $("grid").append(panel);
    board.charts.set(def.id, { def, panel, body, empty, plot: null, keys: "" });
  }
  const observer = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const chart = [...board.charts.values()].find((c) => c.body === entry.target);
      if (chart && chart.plot) chart.plot.setSize(size(chart));
    }
  });
  for (const chart of board.charts.values()) observer.observe(chart.body);
}

function size(chart) {
  const width = Math.max(200, Math.floor(chart.body.clientWidth));
  return { width, height: window.matchMedia("(max-width: 600px)").matches ? 180 : 210 };
}

function plotOptions(chart, series) {
  const def = chart.def;
  const axis = {
    stroke: "#9fa7b3",
    grid: { stroke: "#2c3036", width: 1 },
    ticks: { stroke: "#2c3036", width: 1 },
    font: "11px system-ui, sans-serif",
  };
  // the legend shows the newest values unless the pointer is over the chart (as Grafana's "last")
  const newest = (u) => {
    if (u.cursor.idx === null || u.cursor.idx === undefined) u.setLegend({ idx: u.data[0].length - 1 }, false);
  };
  return {
    ...size(chart),
    padding: [8, 18, 0, 0],
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    legend: { live: true },
    hooks: { draw: [newest], setCursor: [newest] },
    scales: {
      x: { time: true },
      y: { range: (_u, _min, max) => [0, def.max ?? (max > 0 ? max * 1.15 : 1)] },
    },
    axes: [
      { ...axis, space: 70, values: (_u, ticks) => ticks.map((t) => fmt.clock(t)) },
      {
        ...axis,
        size: 58,
        ...(def.unit.incrs ? { incrs: def.unit.incrs } : {}),
        values: (_u, ticks) => ticks.map((t) => def.unit.tick(t)),
      },
    ],
    series: [
      { value: (_u, t) => (t === null ? "—" : fmt.clock(t)) },
      ...series.map((s) => ({
        label: s.key,
        stroke: s.colour || colour(s.key),
        width: 2,
        dash: s.dash ? [6, 4] : undefined,
        fill: series.length === 1 ? `${s.colour || colour(s.key)}22` : undefined,
        points: { show: false },
        spanGaps: false,
        value: (_u, v) => def.unit.value(v),
      })),
    ],
  };
}

function drawChart(chart) {
  const points = board.points;
  const series = chart.def.series(points);
  const hasData = series.some((s) => s.values.some((v) => v !== null));
  chart.panel.dataset.points = String(series.reduce((n, s) => n + s.values.filter((v) => v !== null).length, 0));
  chart.empty.hidden = hasData;
  chart.body.hidden = !hasData || !window.uPlot;
  if (!hasData || !window.uPlot) return;
  const data = [points.map((p) => p.t), ...series.map((s) => s.values)];
  const keys = series.map((s) => s.key).join("|");
  if (chart.plot && chart.keys !== keys) {
    chart.plot.destroy();
    chart.plot = null;
  }
  if (!chart.plot) {
    chart.plot = new window.uPlot(plotOptions(chart, series), data, chart.body);
    chart.keys = keys;
  } else {
    chart.plot.setData(data);
  }
}

// --- rendering the newest data -------------------------------------------------------------

function lastOf(stage) {
  for (let i = board.points.length - 1; i >= 0; i--) {
    const pair = board.points[i].latency[stage];
    if (pair && pair[0] !== null) return { value: pair[0], t: board.points[i].t };
  }
  return null;
}

function renderTiles() {
  const last = board.points[board.points.length - 1];
  if (!last) return;
  for (const t of TILES) {
    const tile = $(`tile-${t.id}`);
    let text, raw, note;
    if (t.stage) {
      const seen = lastOf(t.stage);
      raw = seen ? seen.value : null;
      text = fmt.s(raw);
      const age = seen ? last.t - seen.t : 0;
      note = !seen ? "none yet" : age < 3 ? "p50, last 30 s" : `p50, ${Math.round(age)} s ago`;
    } else {
      raw = t.raw(last);
      text = t.value(last);
      note = typeof t.note === "function" ? t.note(last) : t.note;
    }
    $(`tile-${t.id}-value`).textContent = text;
    $(`tile-${t.id}-note`).textContent = note;
    tile.dataset.value = raw === null || raw === undefined ? "" : String(raw);
    tile.classList.toggle("warn", Boolean(t.warn && t.warn(last)));
  }
}

function renderHealth(health, targets) {
  $("health").dataset.level = health.level;
  $("health-status").textContent = health.status;
  $("health-reason").textContent = health.reasons.join("; ");
  const last = board.points[board.points.length - 1];
  $("targets").replaceChildren(
    ...[...targets].sort((a, b) => flowRank(a.name) - flowRank(b.name)).map((t) => {
      const cpu = last && last.cpu[t.name] !== undefined ? ` · ${fmt.pct(last.cpu[t.name])} CPU` : "";
      const rss = last && last.rss[t.name] !== undefined ? ` · ${fmt.bytes(last.rss[t.name])}` : "";
      const title = t.up ? `${t.url}: answered in ${t.scrape_ms} ms${cpu}${rss}` : `${t.url}: ${t.error}`;
      return el(
        "li",
        { class: t.up ? "up" : "down", title },
        el("span", { class: "dot", "aria-hidden": "true" }),
        t.up ? t.name : `${t.name} down`,
      );
    }),
  );
}

function render(data) {
  renderHealth(data.health, data.targets);
  renderTiles();
  for (const chart of board.charts.values()) drawChart(chart);
  $("updated").textContent = `updated ${fmt.clock(data.now)}`;
  $("updated").dataset.state = "ok";
  $("notice").hidden = Boolean(window.uPlot);
  if (!window.uPlot) {
    $("notice").textContent = data.charts
      ? "The charting library did not load; reload the page."
      : "Charts are off: the charting library (uPlot, from the uplot-python package) is not installed on the server. Install it with: pip install --no-deps uplot-python==1.1.1";
  }
}

// --- polling -------------------------------------------------------------------------------

async function poll() {
  clearTimeout(board.timer);
  if (document.hidden) return; // visibilitychange polls again
  try {
    const r = await fetch(`api/ops?since=${board.last}`, {
      headers: { Authorization: `Bearer ${board.token}` },
      cache: "no-store",
    });
    if (r.status === 401) {
      showGate(true);
      return;
    }
    if (!r.ok) throw new Error(`the server answered ${r.status}`);
    const data = await r.json();
    showGate(false);
    board.history = data.history_s;
    for (const p of data.points) if (p.t > board.last) board.points.push(p);
    if (board.points.length) board.last = board.points[board.points.length - 1].t;
    const oldest = data.now - board.history;
    while (board.points.length && board.points[0].t < oldest) board.points.shift();
    board.polls += 1;
    render(data);
  } catch (e) {
    $("updated").textContent = `no answer from Habla (${e.message || e}); retrying`;
    $("updated").dataset.state = "error";
    $("health").dataset.level = "bad";
    $("health-status").textContent = "unreachable";
    $("health-reason").textContent = "the gateway did not answer";
  }
  board.timer = setTimeout(poll, POLL_MS);
}

function showGate(on) {
  document.body.dataset.screen = on ? "gate" : "board";
  $("gate").hidden = !on;
  $("board").inert = on;
  if (on) {
    $("gate-title").textContent = board.token ? "This token was refused" : "Token needed";
    $("token-input").value = "";
    $("token-input").focus();
  }
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  board.token = $("token-input").value.trim();
  localStorage.setItem(TOKEN_KEY, board.token);
  poll();
});
window.addEventListener("hashchange", () => {
  if (location.hash.includes("token=")) {
    takeTokenFromUrl();
    poll();
  }
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) poll();
});

takeTokenFromUrl();
buildTiles();
buildPanels();
if (board.token) poll();
else showGate(true);
