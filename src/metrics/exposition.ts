/**
 * The Prometheus text exposition format (version 0.0.4), as primitives: a
 * family's `HELP` and `TYPE` lines, its series with escaped labels, and
 * histograms; series of a family with the same labels are added up (or, for
 * a flag, the largest kept) before they are written.
 *
 * @module
 */
import type { HistogramSnapshot } from "../metrics_snapshot.ts";

/** The prefix of every metric name. */
const PREFIX = "magic_foundation_";

/** A series' labels, in order: `[name, value]`. */
export type Labels = ReadonlyArray<readonly [string, string]>;

/** How the series of one family that share their labels are merged. */
export type Merge = "sum" | "max";

/** One metric family: its series, before they are written. */
export interface FamilyRows {
  name: string;
  type: "counter" | "gauge";
  help: string;
  merge?: Merge;
  rows: Iterable<readonly [Labels, number]>;
}

/** One histogram family: per label set, the histogram. */
export interface HistogramRows {
  name: string;
  help: string;
  rows: Iterable<readonly [Labels, HistogramSnapshot]>;
}

/** Writes a counter or gauge family, merging series with equal labels. */
export function writeFamily(out: string[], family: FamilyRows): void {
  writeHeader(out, family.name, family.type, family.help);
  const merged = new Map<string, [Labels, number]>();
  for (const [labels, value] of family.rows) {
    const key = JSON.stringify(labels);
    const seen = merged.get(key);
    if (seen === undefined) merged.set(key, [labels, value]);
    else if (family.merge === "max") seen[1] = Math.max(seen[1], value);
    else seen[1] += value;
  }
  for (const [labels, value] of merged.values()) {
    out.push(series(family.name, labels, value));
  }
}

/**
 * Writes a histogram family: per label set, cumulative `_bucket{le=…}`
 * series ending at `+Inf`, `_sum` and `_count`; histograms with equal labels
 * (and the same bounds) are added up.
 */
export function writeHistograms(out: string[], family: HistogramRows): void {
  writeHeader(out, family.name, "histogram", family.help);
  const merged = new Map<string, [Labels, HistogramSnapshot]>();
  for (const [labels, h] of family.rows) {
    const key = JSON.stringify(labels);
    const seen = merged.get(key);
    if (seen === undefined) {
      merged.set(key, [labels, { ...h, cumulative: [...h.cumulative] }]);
      continue;
    }
    const sum = seen[1];
    sum.count += h.count;
    sum.sum += h.sum;
    for (let i = 0; i < sum.cumulative.length; i++) {
      sum.cumulative[i]! += h.cumulative[i] ?? 0;
    }
  }
  const name = family.name;
  for (const [labels, h] of merged.values()) {
    for (let i = 0; i < h.bounds.length; i++) {
      out.push(series(
        `${name}_bucket`,
        [...labels, ["le", formatNumber(h.bounds[i]!)]],
        h.cumulative[i]!,
      ));
    }
    out.push(series(`${name}_bucket`, [...labels, ["le", "+Inf"]], h.count));
    out.push(series(`${name}_sum`, labels, h.sum));
    out.push(series(`${name}_count`, labels, h.count));
  }
}

function writeHeader(
  out: string[],
  name: string,
  type: "counter" | "gauge" | "histogram",
  help: string,
): void {
  out.push(`# HELP ${PREFIX}${name} ${escapeHelp(help)}\n`);
  out.push(`# TYPE ${PREFIX}${name} ${type}\n`);
}

function series(name: string, labels: Labels, value: number): string {
  const text = labels.map(([key, v]) => `${key}="${escapeLabelValue(v)}"`)
    .join(",");
  return `${PREFIX}${name}{${text}} ${formatNumber(value)}\n`;
}

/**
 * A label value as the format wants it: backslash, double quote and line
 * feed escaped.
 *
 * @example Escaping
 * ```ts
 * import { escapeLabelValue } from "./exposition.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
 * assert.equal(escapeLabelValue("plain"), "plain");
 * ```
 *
 * @param value The raw value.
 * @returns The escaped value, to put between double quotes.
 */
export function escapeLabelValue(value: string): string {
  return value.replace(
    /[\\"\n]/g,
    (c) => c === "\\" ? "\\\\" : c === '"' ? '\\"' : "\\n",
  );
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\\" ? "\\\\" : "\\n");
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
