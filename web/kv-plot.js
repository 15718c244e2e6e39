// The KV-cache plot: one horizontal bar per layout, drawn as SVG by hand.
const NS = 'http://www.w3.org/2000/svg';
const LABEL_W = 150;
const BAR_MAX = 330;
const ROW_H = 40;

/** "12.3 MB" (decimal units, as a person reads a download size). */
export function formatBytes(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * Draws `rows` ({ key, label, bytes }) into `svg`, bars scaled to the
 * largest; each bar carries data-bytes so a test can read what is drawn.
 */
export function drawKvPlot(svg, rows, caption) {
  svg.replaceChildren();
  const max = Math.max(...rows.map((r) => r.bytes), 1);
  rows.forEach((r, i) => {
    const y = 8 + i * ROW_H;
    const w = (r.bytes / max) * BAR_MAX;
    svg.append(
      el('text', { x: 0, y: y + 19 }, r.label),
      el('rect', { class: `bar-${r.key}`, id: `bar-${r.key}`, x: LABEL_W, y, width: w.toFixed(2), height: 28, rx: 3, 'data-bytes': r.bytes }),
      el('text', { x: LABEL_W + w + 8, y: y + 19, id: `bar-${r.key}-label` }, formatBytes(r.bytes)),
    );
  });
  const height = 8 + rows.length * ROW_H + 16;
  svg.append(el('text', { x: LABEL_W, y: height - 16, fill: '#555' }, caption));
  svg.setAttribute('viewBox', `0 0 640 ${height}`);
  svg.setAttribute('height', height);
}
