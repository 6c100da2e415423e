/**
 * Why the local log is files and not Deno KV (issue 22): the same 200-byte
 * records stored durably both ways, in the same run.
 *
 * - Deno KV (`Deno.openKv(path)`, SQLite): needs `--unstable-kv` (without it
 *   `Deno.openKv` is `undefined` in Deno 2.9.6), so every user program would
 *   need the flag; each commit is its own durable transaction.
 * - An append-only file: `write` + `fdatasync`, one sync per record, or one
 *   per batch of 100 (the log's group commit).
 *
 * Run: `deno run -A --unstable-kv bench/durable_store_choice.ts` (`--n=N`
 * records per row, default 500).
 *
 * @module
 */
const N = Number(
  Deno.args.find((a) => a.startsWith("--n="))?.slice(4) ?? 500,
);
const record = new Uint8Array(200).fill(7);

// deno-lint-ignore no-console
const print = (line: string): void => console.log(line);

async function row(name: string, fn: () => Promise<void>): Promise<void> {
  const start = performance.now();
  await fn();
  const ms = performance.now() - start;
  print(
    `${name.padEnd(40)} ${(N / ms * 1000).toFixed(0).padStart(8)} records/s`,
  );
}

if (import.meta.main) {
  const dir = await Deno.makeTempDir({ prefix: "durable_store_choice_" });
  try {
    const openKv = (Deno as unknown as {
      openKv?: (path: string) => Promise<Deno.Kv>;
    }).openKv;
    if (openKv === undefined) {
      print("Deno KV: skipped (run with --unstable-kv)");
    } else {
      const kv = await openKv(`${dir}/kv.sqlite`);
      await row("kv.set, one awaited after another", async () => {
        for (let i = 0; i < N; i++) await kv.set(["one", i], record);
      });
      await row("kv.set, 100 concurrent at a time", async () => {
        for (let i = 0; i < N; i += 100) {
          await Promise.all(
            [...Array(100)].map((_, j) => kv.set(["batch", i + j], record)),
          );
        }
      });
      kv.close();
    }
    using file = await Deno.open(`${dir}/log`, { append: true, create: true });
    await row("file write + fdatasync per record", async () => {
      for (let i = 0; i < N; i++) {
        await file.write(record);
        await file.syncData();
      }
    });
    await row("file 100 records + one fdatasync", async () => {
      const batch = new Uint8Array(record.length * 100);
      for (let i = 0; i < N; i += 100) {
        await file.write(batch);
        await file.syncData();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
