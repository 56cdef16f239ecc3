// Metric series from the API, as chart curves.
//
// Relative time is computed here from wall time: the page keeps each run's
// t0 (its first point) from the first fetch, so live points, which carry
// wall time, land on the same axis, and a zoomed fetch asks for the same
// range in wall time.

import { get, url } from "./api.js";
import { toNumber } from "./dom.js";

export const POINTS = 2000;

// xMode: "step", "time", "relative" or "metric:KEY"; "auto" asks for
// steps, and each curve's `defaultX` says the axis its key is drawn on by
// default ("step" or a metric). range: {from, to} in the x unit, or null.
// t0: the run's first point time, for relative.
// Returns {series: {key: curve}, t0, cursor}.
export async function fetchSeries(runId, keys, xMode, range, t0) {
  const x = xMode === "relative" ? "time" : xMode === "auto" ? "step" : xMode.startsWith("metric:") ? xMode.slice(7) : xMode;
  const shift = xMode === "relative" && range && t0 !== undefined && t0 !== null ? t0 : 0;
  const answer = await get(
    url(`/api/runs/${encodeURIComponent(runId)}/metrics`, {
      keys,
      points: POINTS,
      x,
      from: range ? range.from + shift : null,
      to: range ? range.to + shift : null,
    }),
  );
  const series = {};
  let first = Infinity;
  for (const s of Object.values(answer.series || {})) if (s.x && s.x.length && s.x[0] < first) first = s.x[0];
  const base = xMode === "relative" ? (t0 ?? (Number.isFinite(first) ? first : 0)) : undefined;
  for (const [key, s] of Object.entries(answer.series || {})) {
    const xs = (s.x || []).map((v) => (base !== undefined ? v - base : v));
    series[key] = {
      key,
      x: xs,
      y: (s.y || []).map((v) => {
        const n = toNumber(v);
        return n === null ? NaN : n;
      }),
      step: s.step || xs.map((_, i) => i),
      full: !!s.full,
      defaultX: s.default_x || "step",
      count: s.count,
      shown: s.shown,
      t0: base,
    };
  }
  return { series, t0: base, cursor: answer.cursor };
}
