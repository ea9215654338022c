/**
 * The benchmark's chart: calls/s against calls in flight, one line per
 * system (the median of its runs at each level), both axes logarithmic, as
 * plain SVG text that any browser, GitHub or an image viewer shows. Written
 * next to `RESULTS.md`.
 *
 * @module
 */

import { median, type SystemRuns } from "./report.ts";

const WIDTH = 760;
const HEIGHT = 420;
const MARGIN = { left: 70, right: 210, top: 40, bottom: 50 };
/** Colours that stay apart for up to 12 lines (then they repeat, with dashes). */
const COLOURS = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
  "#393b79",
  "#637939",
];

/** One line of the chart. */
export interface Series {
  /** The system's name. */
  name: string;
  /** Calls in flight and the median calls/s there, by level. */
  points: { inFlight: number; callsPerSecond: number }[];
}

/**
 * The lines of a run: every system that has readings, the median calls/s of
 * its runs at each level.
 *
 * @param levels The levels measured.
 * @param systems The runs of each system.
 * @returns One series per system with readings.
 */
export function chartSeries(
  levels: { inFlight: number }[],
  systems: SystemRuns[],
): Series[] {
  return systems.flatMap(({ system, runs }) => {
    const points = levels.flatMap((level, index) => {
      const rates = runs.flatMap((run) => {
        const reading = run[index];
        return reading === undefined ? [] : [reading.calls / reading.seconds];
      });
      return rates.length === 0
        ? []
        : [{ inFlight: level.inFlight, callsPerSecond: median(rates) }];
    });
    return points.length === 0 ? [] : [{ name: system.name, points }];
  });
}

/**
 * Draws the chart: calls in flight and calls/s on logarithmic axes (calls/s
 * by whole decades), a legend on the right.
 *
 * @param series The lines.
 * @param title The title, e.g. the command and date of the run.
 * @returns The SVG document.
 */
export function renderChart(series: Series[], title: string): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const levels = [...new Set(series.flatMap((s) => s.points.map((p) => p.inFlight)))].sort((a, b) =>
    a - b
  );
  const rates = series.flatMap((s) => s.points.map((p) => p.callsPerSecond)).filter((r) => r > 0);
  // Decades: the memory broker's 100,000 calls/s and Kafka's 1,000 both stay readable.
  const bottomExp = Math.floor(Math.log10(Math.min(...rates, 10)));
  const topExp = Math.max(bottomExp + 1, Math.ceil(Math.log10(Math.max(...rates, 10))));
  const logMin = Math.log(levels[0] ?? 1);
  const logMax = Math.log(levels[levels.length - 1] ?? 2);
  const x = (inFlight: number) =>
    MARGIN.left +
    (logMax === logMin ? plotW / 2 : ((Math.log(inFlight) - logMin) / (logMax - logMin)) * plotW);
  const y = (rate: number) =>
    MARGIN.top + plotH -
    ((Math.log10(Math.max(rate, 10 ** bottomExp)) - bottomExp) / (topExp - bottomExp)) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${MARGIN.left}" y="20" font-size="13">${escape(title)}</text>`,
  ];
  for (let exp = bottomExp; exp <= topExp; exp++) {
    const rate = 10 ** exp;
    for (const minor of [2, 5]) {
      if (exp < topExp) {
        out.push(
          `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y(rate * minor)}" y2="${
            y(rate * minor)
          }" stroke="#f2f2f2"/>`,
        );
      }
    }
    out.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y(rate)}" y2="${
        y(rate)
      }" stroke="#ddd"/>`,
      `<text x="${MARGIN.left - 6}" y="${y(rate) + 4}" text-anchor="end">${
        Math.round(rate).toLocaleString("en-US")
      }</text>`,
    );
  }
  for (const level of levels) {
    out.push(
      `<line x1="${x(level)}" x2="${x(level)}" y1="${MARGIN.top}" y2="${
        MARGIN.top + plotH
      }" stroke="#eee"/>`,
      `<text x="${x(level)}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${level}</text>`,
    );
  }
  out.push(
    `<text x="${MARGIN.left + plotW / 2}" y="${
      HEIGHT - 12
    }" text-anchor="middle">calls in flight</text>`,
    `<text transform="translate(16 ${
      MARGIN.top + plotH / 2
    }) rotate(-90)" text-anchor="middle">calls/s (median of the runs, logarithmic)</text>`,
  );
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const dash = i >= COLOURS.length ? ` stroke-dasharray="6 3"` : "";
    const points = s.points.map((p) =>
      `${x(p.inFlight).toFixed(1)},${y(p.callsPerSecond).toFixed(1)}`
    )
      .join(" ");
    const legendY = MARGIN.top + 8 + i * 18;
    out.push(
      `<g data-system="${escape(s.name)}">`,
      `<polyline fill="none" stroke="${colour}" stroke-width="2"${dash} points="${points}"/>`,
      ...s.points.map((p) =>
        `<circle cx="${x(p.inFlight).toFixed(1)}" cy="${
          y(p.callsPerSecond).toFixed(1)
        }" r="3" fill="${colour}"/>`
      ),
      `<line x1="${WIDTH - MARGIN.right + 16}" x2="${
        WIDTH - MARGIN.right + 36
      }" y1="${legendY}" y2="${legendY}" stroke="${colour}" stroke-width="2"${dash}/>`,
      `<text x="${WIDTH - MARGIN.right + 42}" y="${legendY + 4}">${escape(s.name)}</text>`,
      `</g>`,
    );
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}
