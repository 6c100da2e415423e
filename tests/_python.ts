/**
 * Test helper: a Python virtual environment with the packages a test needs
 * (`nats-py`, `websockets`), made by the test in a folder of its own; pip
 * uses whatever index the machine is set to. When Python or the package is
 * missing, a one-line reason to skip with.
 */

/** Runs `command` and returns its status and output, never throwing. */
export async function run(
  command: string,
  args: string[],
  cwd?: string,
): Promise<{ success: boolean; stdout: string; stderr: string }> {
  try {
    const output = await new Deno.Command(command, {
      args,
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      success: output.success,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } catch (error) {
    return { success: false, stdout: "", stderr: String(error) };
  }
}

/**
 * A virtual environment in `dir` with `packages` installed: its `python`,
 * or a one-line reason why there is none.
 */
export async function pythonWith(
  dir: string,
  packages: string[],
): Promise<{ python: string } | { reason: string }> {
  const venv = await run("python3", ["-m", "venv", `${dir}/venv`]);
  if (!venv.success) {
    return {
      reason: venv.stderr.includes("NotFound")
        ? "python3 is not installed"
        : "python3 -m venv failed",
    };
  }
  const python = `${dir}/venv/bin/python`;
  const pip = await run(python, [
    "-m",
    "pip",
    "install",
    "--quiet",
    ...packages,
  ]);
  if (!pip.success) {
    return { reason: `pip install ${packages.join(" ")} failed (no index?)` };
  }
  return { python };
}
