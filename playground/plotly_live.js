// A Plotly graph that stays mounted: Streamlit calls the default export on
// mount and whenever the component's data (one message from
// playground/plotly_live.py) changes; the graph is updated with Plotly.react.
//
// Message: {lib, name, height, clickable, rev, seq, need, layout?, traces, frozen}
//   need === null: a whole figure (layout and every trace).
//   need = n: a difference from the figure of message n or any later one:
//     layout absent       -> keep the layout;
//     traces[i] === null  -> keep trace i;
//     traces[i]._tail     -> [start, x, y]: keep trace i's first `start` points,
//                            then append x and y;
//     traces[i] otherwise -> the new trace i.
//   frozen[i]: how many leading points of trace i will never change.
// A message that does not fit what this graph holds (it was remounted, or
// missed a message) asks Python for a whole figure with the "resync" trigger.
//
// When Streamlit mounts a chart's element anew, the graph (figure, zoom and all)
// moves into the new element: before the browser paints it if a mutation
// observer sees the new element, else when its JavaScript runs.

const INSTANCES = new WeakMap(); // element -> its graph
const BY_NAME = new Map(); // chart key -> its graph (to find one Streamlit unmounted)
const ORPHAN_MS = 5000; // how long an unmounted graph waits to be adopted

/** The next figure state from `state` (or null) and message `msg`; null if `msg` needs more. */
export function applyMessage(state, msg) {
  // Already applied (the theme changed, or a superseded call arrived late).
  if (state && state.rev === msg.rev && state.seq >= msg.seq) return state;
  if (msg.need === null || msg.need === undefined) {
    return { rev: msg.rev, seq: msg.seq, layout: msg.layout, traces: msg.traces,
             frozen: msg.frozen };
  }
  if (!state || state.rev !== msg.rev) return null;
  if (state.seq < msg.need || state.traces.length < msg.traces.length) return null;
  const traces = [];
  for (let i = 0; i < msg.traces.length; i += 1) {
    const t = msg.traces[i];
    const old = state.traces[i];
    if (t === null) {
      traces.push(old);
    } else if (t._tail) {
      const [start, x, y] = t._tail;
      if ((state.frozen[i] || 0) < start || old.x.length < start) return null;
      traces.push({ ...old, x: old.x.slice(0, start).concat(x),
                    y: old.y.slice(0, start).concat(y) });
    } else {
      traces.push(t);
    }
  }
  return { rev: msg.rev, seq: msg.seq, layout: msg.layout || state.layout, traces,
           frozen: msg.frozen };
}

function rgb(color) {
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.fillStyle = '#000000';
  ctx.fillStyle = color;
  const c = ctx.fillStyle; // "#rrggbb" or "rgba(r, g, b, a)"
  if (c[0] === '#') return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
  return c.slice(c.indexOf('(') + 1, -1).split(',').slice(0, 3).map(Number);
}

/** Colours and font of Streamlit's current theme (its --st-* variables). */
function streamlitTheme(el) {
  const css = getComputedStyle(el);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const text = v('--st-text-color', '#31333F');
  const bg = v('--st-background-color', '#FFFFFF');
  const [r, g, b] = rgb(bg);
  return {
    text, bg, heading: v('--st-heading-color', text), font: v('--st-font', 'sans-serif'),
    border: v('--st-border-color', 'rgba(49, 51, 63, 0.2)'),
    grid: v('--st-border-color-light', 'rgba(49, 51, 63, 0.1)'),
    dark: 0.2126 * r + 0.7152 * g + 0.0722 * b < 128,
  };
}

let cachedTemplate = { key: null, value: null };

/** Plotly's template for the theme; the same object while the theme stays (cheaper reacts). */
function template(t) {
  const key = JSON.stringify(t);
  if (cachedTemplate.key !== key) cachedTemplate = { key, value: buildTemplate(t) };
  return cachedTemplate.value;
}

function buildTemplate(t) {
  const axis = { gridcolor: t.grid, linecolor: t.border, zerolinecolor: t.border,
                 tickcolor: t.border };
  return {
    layout: {
      font: { family: t.font, color: t.text },
      title: { font: { color: t.heading }, subtitle: { font: { color: t.text } } },
      hoverlabel: { bgcolor: t.bg, bordercolor: t.border, font: { color: t.text, family: t.font } },
      xaxis: axis, yaxis: axis,
    },
  };
}

function merged(target, extra) {
  const out = { ...target };
  for (const [k, v] of Object.entries(extra)) {
    const isObj = v && typeof v === 'object' && !Array.isArray(v);
    out[k] = isObj && out[k] && typeof out[k] === 'object' ? merged(out[k], v) : v;
  }
  return out;
}

/** A copy of a figure part for the theme: its "_dark" overrides applied in a dark theme. */
function themed(part, dark) {
  const { _dark, ...rest } = part;
  return dark && _dark ? merged(rest, _dark) : rest;
}

function draw(inst) {
  const { state } = inst;
  const Plotly = window.Plotly;
  if (!state || !Plotly) return;
  const t = streamlitTheme(inst.root);
  const layout = themed(state.layout, t.dark);
  layout.template = template(t);
  const traces = state.traces.map((tr) => themed(tr, t.dark));
  const config = {
    displaylogo: false, responsive: true,
    modeBarButtonsToRemove: ['select2d', 'lasso2d'],
    toImageButtonOptions: { format: 'png', filename: inst.name, scale: 2 },
  };
  Plotly.react(inst.div, traces, layout, config);
  inst.drawn = true;
  if (!inst.listening && inst.div.on) {
    inst.listening = true;
    inst.div.on('plotly_click', (ev) => {
      const p = ev && ev.points && ev.points[0];
      if (!inst.clickable || !p) return;
      inst.setTriggerValue('click', {
        trace: p.curveNumber, point: p.pointNumber ?? p.pointIndex ?? null,
        name: (p.data && p.data.name) || null, x: p.x ?? null, y: p.y ?? null,
        customdata: p.customdata ?? null,
      });
    });
  }
}

// A graph's first draw waits for a task of its own, and the graphs waiting are
// drawn top of the page first: when plotly.js arrives (a reload of a training
// page mounts seven graphs at once) the loss curve is drawn and painted first,
// and the page stays responsive between the graphs instead of drawing them all
// in one long task. Later draws (updates of a drawn graph) happen at once.
const FIRST_DRAWS = new Set();
let firstDrawTimer = null;

function drawFirstSoon(inst) {
  FIRST_DRAWS.add(inst);
  if (firstDrawTimer === null) firstDrawTimer = setTimeout(drawNextFirst, 0);
}

function drawNextFirst() {
  firstDrawTimer = null;
  let next = null;
  for (const inst of FIRST_DRAWS) {
    if (inst.drawn || !inst.div.isConnected) {
      FIRST_DRAWS.delete(inst); // drawn meanwhile, or left the page (drawn when adopted)
    } else if (next === null
               || (inst.div.compareDocumentPosition(next.div)
                   & Node.DOCUMENT_POSITION_FOLLOWING)) {
      next = inst;
    }
  }
  if (next === null) return;
  FIRST_DRAWS.delete(next);
  if (FIRST_DRAWS.size) firstDrawTimer = setTimeout(drawNextFirst, 0); // even if this one throws
  draw(next);
}

function adopt(inst, host) {
  inst.root = host;
  host.appendChild(inst.div);
  inst.moved = true;
  INSTANCES.set(host, inst);
}

/** The graph for this element: its own, one of the same chart that Streamlit just
 * unmounted (moved into this element with its figure: no blank, no resync), or new. */
function instanceFor(parentElement, name) {
  let inst = INSTANCES.get(parentElement);
  if (inst) return inst;
  const orphan = BY_NAME.get(name);
  if (orphan && !orphan.root.isConnected) {
    inst = orphan;
    adopt(inst, parentElement);
  } else {
    const div = document.createElement('div');
    div.className = 'nnpg-plot';
    parentElement.appendChild(div);
    inst = { root: parentElement, div, state: null, listening: false, asked: null };
    INSTANCES.set(parentElement, inst);
  }
  BY_NAME.set(name, inst);
  return inst;
}

let watching = false;

/** Streamlit sometimes mounts a chart's element anew (e.g. when a run ends and the page
 * leaves its fragments): one DOM update removes the old element and adds the new one,
 * whose JavaScript runs only after the browser has painted it, empty. A mutation
 * observer runs before that paint: it moves the graph into the new element at once. */
function watchRemounts() {
  if (watching) return;
  watching = true;
  new MutationObserver(() => {
    for (const [name, inst] of BY_NAME) {
      if (inst.root.isConnected) continue;
      const box = document.querySelector(`.st-key-${CSS.escape(name)}`);
      if (!box) continue;
      const host = box.querySelector('[data-testid="stBidiComponentRegular"]');
      if (host && !INSTANCES.has(host)) {
        adopt(inst, host);
      } else if (!host && inst.div.parentElement !== box) {
        box.appendChild(inst.div); // shown in the chart's container until its element is there
      }
    }
  }).observe(document.body, { childList: true, subtree: true });
}

export default function ({ data, parentElement, setTriggerValue }) {
  if (!data || !parentElement) return undefined;
  watchRemounts();
  const inst = instanceFor(parentElement, data.name);
  inst.name = data.name;
  inst.clickable = !!data.clickable;
  inst.setTriggerValue = setTriggerValue;
  const next = applyMessage(inst.state, data);
  if (next === null) {
    const ask = `${data.rev}:${data.seq}`;
    if (inst.asked !== ask) { // once per message: Python answers with a whole figure
      inst.asked = ask;
      setTriggerValue('resync', { rev: data.rev, seq: data.seq });
    }
  } else {
    inst.state = next;
  }
  if (window.Plotly && inst.drawn) {
    draw(inst);
    if (inst.moved) {
      inst.moved = false;
      window.Plotly.Plots.resize(inst.div);
    }
  } else if (window.Plotly) {
    drawFirstSoon(inst);
  } else {
    loadPlotly(data.lib).then(() => drawFirstSoon(inst)).catch((err) => {
      inst.div.textContent = `The chart library did not load (${err.message}).`;
    });
  }
  // Streamlit calls this on unmount, and at once when a newer message overtook
  // this call. A graph that left the page waits a while for a new element of the
  // same chart (Streamlit sometimes mounts a chart anew), then is taken down.
  return () => setTimeout(() => {
    if (inst.root.isConnected) return;
    if (INSTANCES.get(parentElement) === inst) INSTANCES.delete(parentElement);
    if (BY_NAME.get(inst.name) !== inst) return;
    BY_NAME.delete(inst.name);
    if (window.Plotly) window.Plotly.purge(inst.div);
  }, ORPHAN_MS);
}
