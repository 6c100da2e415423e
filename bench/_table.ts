/** The benchmarks' tables, printed as Markdown. */

/** `rows` under `header` as the lines of a Markdown table, columns padded. */
export function markdownTable(header: string[], rows: string[][]): string[] {
  const width = (i: number): number =>
    Math.max(...[header, ...rows].map((cells) => cells[i]!.length));
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, i) => cell.padEnd(width(i))).join(" | ")} |`;
  return [
    line(header),
    `|${header.map((_, i) => "-".repeat(width(i) + 2)).join("|")}|`,
    ...rows.map(line),
  ];
}
