// Two small charts drawn as SVG by hand: no build step, no dependency to vendor and keep
// up to date, and a few dozen lines are all these two pictures need.

const NS = "http://www.w3.org/2000/svg";
const W = 600;
const H = 120;
const PAD = { left: 38, right: 8, top: 10, bottom: 22 };

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function frame(label) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "aria-label": label });
  root.append(svg("line", { class: "axis", x1: PAD.left, y1: H - PAD.bottom,
    x2: W - PAD.right, y2: H - PAD.bottom }));
  return root;
}

const hhmm = (seconds) => new Date(seconds * 1000).toLocaleTimeString([], {
  hour: "2-digit", minute: "2-digit" });

function yAxis(root, max, unit = "") {
  root.append(svg("text", { x: PAD.left - 4, y: PAD.top + 8, "text-anchor": "end" },
    `${max}${unit}`));
  root.append(svg("text", { x: PAD.left - 4, y: H - PAD.bottom, "text-anchor": "end" }, "0"));
}

function empty(root, text) {
  root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, text));
  return root;
}

// Jobs completed and failed per minute over the last `minutes` minutes: one line each,
// a dot (class "point") on every minute that had jobs.
export function minuteChart({ completed, failed, minutes, recorded }) {
  const root = frame(`jobs per minute, last ${minutes} minutes`);
  const end = Math.floor(Date.now() / 60000) * 60;
  const start = end - (minutes - 1) * 60;
  const x = (t) => PAD.left + ((t - start) / Math.max(60, end - start)) * (W - PAD.left - PAD.right);
  root.append(svg("text", { x: PAD.left, y: H - 6 }, hhmm(start)));
  root.append(svg("text", { x: W - PAD.right, y: H - 6, "text-anchor": "end" }, "now"));
  if (!recorded) {
    return empty(root, "no metrics: start workers with metrics={'max_data_points': 1440}");
  }
  const max = Math.max(1, ...completed.map((p) => p[1]), ...failed.map((p) => p[1]));
  const y = (n) => H - PAD.bottom - (n / max) * (H - PAD.top - PAD.bottom);
  yAxis(root, max);
  for (const [kind, points] of [["completed", completed], ["failed", failed]]) {
    const byMinute = new Map(points.map(([t, n]) => [t, n]));
    const line = [];
    for (let t = start; t <= end; t += 60) line.push(`${x(t).toFixed(1)},${y(byMinute.get(t) || 0).toFixed(1)}`);
    root.append(svg("polyline", { class: `line ${kind}`, points: line.join(" ") }));
    for (const [t, n] of points) {
      if (!n || t < start) continue;
      const dot = svg("circle", { class: `point ${kind}`, cx: x(t), cy: y(n), r: 2.5,
        "data-n": n });
      dot.append(svg("title", {}, `${hhmm(t)}: ${n} ${kind}`));
      root.append(dot);
    }
  }
  return root;
}

// How long each of the last completed jobs waited before it ran (seconds), oldest first.
export function waitChart(waits) {
  const root = frame("wait before running, recent jobs");
  if (!waits.length) return empty(root, "no completed jobs yet");
  const max = Math.max(0.001, ...waits.map((w) => w.wait));
  const nice = max >= 10 ? Math.ceil(max) : Number(max.toPrecision(2));
  const width = (W - PAD.left - PAD.right) / waits.length;
  yAxis(root, nice, "s");
  waits.forEach((w, i) => {
    const h = (w.wait / nice) * (H - PAD.top - PAD.bottom);
    const bar = svg("rect", { class: "wait bar-wait", x: PAD.left + i * width + 0.5,
      y: H - PAD.bottom - h, width: Math.max(1, width - 1), height: Math.max(0.5, h) });
    bar.append(svg("title", {}, `job ${w.id}: waited ${w.wait}s, ran ${w.run}s`));
    root.append(bar);
  });
  root.append(svg("text", { x: PAD.left, y: H - 6 }, "older"));
  root.append(svg("text", { x: W - PAD.right, y: H - 6, "text-anchor": "end" }, "newest"));
  return root;
}
