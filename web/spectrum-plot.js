// The GQA-spectrum plot: perplexity (log scale) against KV bytes per token,
// one point per variant measured, drawn as SVG by hand.
import { formatBytes } from './kv-plot.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 300;
const LEFT = 64;
const RIGHT = 24;
const TOP = 16;
const BOTTOM = 44;

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * Draws `points` ({ label, bytesPerToken, perplexity }) into `svg`: x from 0
 * to the largest bytes per token, y over whole decades of perplexity (MQA
 * by mean pooling sits near 10^4 where the shipped model is near 20). Each
 * point carries data-bytes and data-perplexity so a test can read what is drawn.
 */
export function drawSpectrumPlot(svg, points) {
  svg.replaceChildren();
  const plotW = W - LEFT - RIGHT;
  const plotH = H - TOP - BOTTOM;
  const maxBytes = Math.max(...points.map((p) => p.bytesPerToken), 1) * 1.1;
  const logs = points.map((p) => Math.log10(p.perplexity));
  const lo = Math.floor(Math.min(...logs, 1));
  const hi = Math.max(Math.ceil(Math.max(...logs, 2)), lo + 1);
  const x = (bytes) => LEFT + (bytes / maxBytes) * plotW;
  const y = (ppl) => TOP + ((hi - Math.log10(ppl)) / (hi - lo)) * plotH;
  for (let d = lo; d <= hi; d++) {
    svg.append(
      el('line', { x1: LEFT, x2: W - RIGHT, y1: y(10 ** d), y2: y(10 ** d), class: 'grid' }),
      el('text', { x: LEFT - 8, y: y(10 ** d) + 4, 'text-anchor': 'end' }, d <= 3 ? String(10 ** d) : `1e${d}`),
    );
  }
  for (let i = 0; i <= 4; i++) {
    const bytes = (maxBytes / 4) * i;
    svg.append(el('text', { x: x(bytes), y: H - BOTTOM + 18, 'text-anchor': 'middle' }, formatBytes(Math.round(bytes))));
  }
  svg.append(
    el('text', { x: LEFT + plotW / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis' }, 'KV bytes per token (all layers)'),
    el('text', { x: 14, y: TOP + plotH / 2, 'text-anchor': 'middle', class: 'axis', transform: `rotate(-90 14 ${TOP + plotH / 2})` }, 'perplexity'),
  );
  points.forEach((p, i) => {
    const cx = x(p.bytesPerToken);
    const cy = y(p.perplexity);
    svg.append(
      el('circle', { cx: cx.toFixed(1), cy: cy.toFixed(1), r: 5, class: 'point', id: `point-${i}`, 'data-bytes': p.bytesPerToken, 'data-perplexity': p.perplexity }),
      el('text', { x: cx + 8, y: cy - 6 }, p.label),
    );
  });
}
