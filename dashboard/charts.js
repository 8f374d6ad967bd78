// A uPlot line chart that keeps its canvas between updates and only
// swaps its data, so a live feed does not rebuild it every few seconds.

import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

import { html } from './lib.js';

const COLORS = ['#2563eb', '#16a34a', '#dc2626', '#9333ea'];

/** `points`: chart points; `lines`: [{ label, key }] read from each point. */
export function Chart({ title, unit, points, lines }) {
  const box = useRef(null);
  const plot = useRef(null);
  const data = [
    points.map((point) => point.t),
    ...lines.map((line) => points.map((point) => point[line.key])),
  ];

  useEffect(() => {
    plot.current = new uPlot(
      {
        width: 460,
        height: 200,
        series: [
          {},
          ...lines.map((line, i) => ({
            label: line.label,
            stroke: COLORS[i % COLORS.length],
            width: 2,
            spanGaps: true,
          })),
        ],
        axes: [{}, { label: unit, size: 60 }],
      },
      data,
      box.current,
    );
    return () => plot.current.destroy();
  }, []);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return html`<figure class="chart" data-chart=${title}>
    <figcaption>${title}</figcaption>
    <div ref=${box}></div>
  </figure>`;
}
