/**
 * Joining a NATS server that demands credentials: user and password, a
 * token, an NKEY seed file, TLS with client certificates. Each case runs a
 * user's program in a temporary folder outside the repository (importing
 * mod.ts by file URL) against the test's own `nats-server`: with the right
 * credentials a request crosses from one process to the other; with wrong or
 * missing ones the run fails at once (exit 1, `RunReport.failures` names
 * the error) and no secret appears in the output.
 */
import assert from "node:assert/strict";
import { createUser } from "npm:@nats-io/nkeys@2.0.3";
import { Child } from "./_child.ts";
import { type NatsServer, natsSkipReason, startNatsServer } from "./_nats.ts";
import { type OutsideFolder, outsideFolder } from "./_outside.ts";

const skip = await natsSkipReason();

/**
 * The user's program. `ROLE=responder` answers one request on `q://ping`
 * and stops; `ROLE=asker` sends one and stops once answered. NATS comes
 * from the `MAGIC_FOUNDATION_NATS*` variables, or from the JSON options in
 * `NATS_OPTIONS` when set.
 */
const PROGRAM = `
import { Main, Service, type ServiceContext } from "MOD/mod.ts";

class Responder extends Service {
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe("q://ping", async (data, meta) => {
      await ctx.publish(meta.replyTo!, "pong " + String(data));
      await Main.instance().stop();
    });
    console.log("READY");
  }
}

class Asker extends Service {
  override async run(ctx: ServiceContext): Promise<void> {
    const answer = await ctx.request("q://ping", "hello", { timeout: 20_000 });
    console.log("ANSWER " + String(answer));
    await Main.instance().stop();
  }
}

if (import.meta.main) {
  const main = Main.instance();
  main.servicePools = Deno.env.get("ROLE") === "responder"
    ? { answers: [new Responder("responder")] }
    : { asks: [new Asker("asker")] };
  const options = Deno.env.get("NATS_OPTIONS");
  const report = await main.run({
    terminateTimeout: 2000,
    nats: options === undefined ? undefined : JSON.parse(options),
  });
  if (Main.isPrimary) console.log("RESULT " + JSON.stringify(report));
}
`;

/** What configures one process: its environment. */
type Env = Record<string, string>;

/**
 * A test with its own folder holding the program; skipped, with the reason
 * in its name, when `reason` is set.
 */
function authTest(
  name: string,
  fn: (bed: Bed) => Promise<void>,
  reason = skip,
): void {
  const skipped = reason === undefined ? "" : ` (skipped: ${reason})`;
  Deno.test({ name: name + skipped, ignore: skipped !== "" }, async () => {
    await using folder = await outsideFolder("file");
    await folder.write("program.ts", PROGRAM);
    const bed = new Bed(folder);
    try {
      await fn(bed);
    } finally {
      await bed.close();
    }
  });
}

class Bed {
  server: NatsServer | undefined;
  readonly namespace = `t${crypto.randomUUID().slice(0, 8)}`;
  constructor(readonly folder: OutsideFolder) {}

  get dir(): string {
    return this.folder.dir;
  }

  async start(args: string[]): Promise<NatsServer> {
    const server = await startNatsServer(args);
    if (typeof server === "string") throw new Error(server);
    this.server = server;
    return server;
  }

  /** Starts the program as `role` with `env` (the namespace added). */
  run(role: "responder" | "asker", env: Env): Child {
    return this.folder.start("program.ts", {
      env: {
        ROLE: role,
        MAGIC_FOUNDATION_NATS_NAMESPACE: this.namespace,
        ...env,
      },
    });
  }

  /** A request crosses from an asker (`asker`) to a responder (`responder`). */
  async exchange(responder: Env, asker: Env): Promise<void> {
    const answering = this.run("responder", responder);
    await answering.waitFor((line) => line === "READY");
    const asking = this.run("asker", asker);
    const [asked, answered] = [await asking.exit(), await answering.exit()];
    const output = () =>
      `asker:\n${asking.lines.join("\n")}\nresponder:\n${
        answering.lines.join("\n")
      }`;
    assert.ok(asking.lines.includes("ANSWER pong hello"), output());
    assert.equal(asked.code, 0, output());
    assert.equal(answered.code, 0, output());
  }

  /**
   * The program fails at once: exit 1, the first failure naming `error`,
   * every failure matching `detail`, and none of `secrets` anywhere in its
   * output.
   */
  async refused(
    env: Env,
    error: "NatsAuthError",
    detail: RegExp,
    secrets: string[],
  ): Promise<void> {
    const child = this.run("responder", env);
    const status = await child.exit();
    const output = child.lines.join("\n");
    assert.equal(status.code, 1, output);
    assert.ok(!child.lines.includes("READY"), output);
    // The refusal first; then each service whose subscribe() it failed.
    const failures = child.result()?.failures ?? [];
    assert.ok(failures.length > 0, output);
    assert.match(failures[0]!.message, new RegExp(`^${error}: `), output);
    for (const failure of failures) {
      assert.match(failure.message, detail, output);
    }
    for (const secret of secrets) {
      assert.ok(!output.includes(secret), `"${secret}" is in:\n${output}`);
    }
  }

  async close(): Promise<void> {
    await this.server?.stop();
  }
}

const USER = "alice";
const PASSWORD = "pa55-w0rd-s3cret";
const WRONG = "wr0ng-pa55-s3cret";

authTest(
  "NATS user and password: from the URL, the options or the variables, messages flow; wrong or none fail the run at once without showing the password",
  async (bed) => {
    const server = await bed.start(["--user", USER, "--pass", PASSWORD]);
    const host = server.url.slice("nats://".length);
    await bed.exchange(
      { MAGIC_FOUNDATION_NATS: `nats://${USER}:${PASSWORD}@${host}` },
      {
        NATS_OPTIONS: JSON.stringify({
          servers: server.url,
          namespace: bed.namespace,
          user: USER,
          password: PASSWORD,
        }),
      },
    );
    await bed.exchange(
      {
        MAGIC_FOUNDATION_NATS: server.url,
        MAGIC_FOUNDATION_NATS_USER: USER,
        MAGIC_FOUNDATION_NATS_PASSWORD: PASSWORD,
      },
      { MAGIC_FOUNDATION_NATS: `nats://${USER}:${PASSWORD}@${host}` },
    );
    const authorization = /Authorization Violation/;
    await bed.refused(
      { MAGIC_FOUNDATION_NATS: `nats://${USER}:${WRONG}@${host}` },
      "NatsAuthError",
      authorization,
      [WRONG, PASSWORD],
    );
    await bed.refused(
      {
        MAGIC_FOUNDATION_NATS: server.url,
        MAGIC_FOUNDATION_NATS_USER: USER,
        MAGIC_FOUNDATION_NATS_PASSWORD: WRONG,
      },
      "NatsAuthError",
      authorization,
      [WRONG],
    );
    await bed.refused(
      { MAGIC_FOUNDATION_NATS: server.url },
      "NatsAuthError",
      authorization,
      [],
    );
  },
);

const TOKEN = "t0ken-s3cret";

authTest(
  "NATS token: from the URL or the variable, messages flow; a wrong one fails the run at once without showing it",
  async (bed) => {
    const server = await bed.start(["--auth", TOKEN]);
    const host = server.url.slice("nats://".length);
    await bed.exchange(
      { MAGIC_FOUNDATION_NATS: `nats://${TOKEN}@${host}` },
      { MAGIC_FOUNDATION_NATS: server.url, MAGIC_FOUNDATION_NATS_TOKEN: TOKEN },
    );
    await bed.refused(
      { MAGIC_FOUNDATION_NATS: `nats://${WRONG}@${host}` },
      "NatsAuthError",
      /Authorization Violation/,
      [WRONG, TOKEN],
    );
  },
);

authTest(
  "NATS NKEY: a seed file (MAGIC_FOUNDATION_NATS_CREDS or nats.credentials) signs the server's nonce; another user's seed fails the run at once",
  async (bed) => {
    const user = createUser();
    const stranger = createUser();
    const seedFile = `${bed.dir}/user.nk`;
    const strangerFile = `${bed.dir}/stranger.nk`;
    await Deno.writeTextFile(
      seedFile,
      new TextDecoder().decode(user.getSeed()),
    );
    await Deno.writeTextFile(
      strangerFile,
      new TextDecoder().decode(stranger.getSeed()),
    );
    const config = `${bed.dir}/server.conf`;
    await Deno.writeTextFile(
      config,
      `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }\n`,
    );
    const server = await bed.start(["-c", config]);
    await bed.exchange(
      {
        MAGIC_FOUNDATION_NATS: server.url,
        MAGIC_FOUNDATION_NATS_CREDS: seedFile,
      },
      {
        NATS_OPTIONS: JSON.stringify({
          servers: server.url,
          namespace: bed.namespace,
          credentials: seedFile,
        }),
      },
    );
    await bed.refused(
      {
        MAGIC_FOUNDATION_NATS: server.url,
        MAGIC_FOUNDATION_NATS_CREDS: strangerFile,
      },
      "NatsAuthError",
      /Authorization Violation/,
      [new TextDecoder().decode(stranger.getSeed())],
    );
  },
);

/** Why the TLS test cannot run, or `undefined` when `openssl` is there. */
async function opensslMissing(): Promise<string | undefined> {
  try {
    const { success } = await new Deno.Command("openssl", {
      args: ["version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success ? undefined : "openssl does not run";
  } catch {
    return "openssl not found on PATH (apt-get install openssl)";
  }
}

/** Runs `openssl` with `args` in `dir`; throws with its stderr on failure. */
async function openssl(dir: string, args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(
      `openssl ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`,
    );
  }
}

/**
 * Makes, in `dir`: a CA (`ca.pem`), a server certificate for 127.0.0.1
 * (`server.pem`, `server.key`) and a client certificate (`client.pem`,
 * `client.key`) signed by it, and an unrelated CA (`other-ca.pem`).
 */
async function makeCertificates(dir: string): Promise<void> {
  const ca = (name: string) =>
    openssl(dir, [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
    ]);
  await ca("ca");
  await ca("other-ca");
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  await Deno.writeTextFile(
    `${dir}/client.ext`,
    "extendedKeyUsage=clientAuth\n",
  );
  for (const name of ["server", "client"]) {
    await openssl(dir, [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${name}`,
    ]);
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
    ]);
  }
}

authTest(
  "NATS TLS with client certificates: from the variables or nats.tls, messages flow; a server the CA does not vouch for fails the run at once",
  async (bed) => {
    await makeCertificates(bed.dir);
    const file = (name: string) => `${bed.dir}/${name}`;
    const server = await bed.start([
      "--tls",
      "--tlscert",
      file("server.pem"),
      "--tlskey",
      file("server.key"),
      "--tlscacert",
      file("ca.pem"),
      "--tlsverify",
    ]);
    await bed.exchange(
      {
        MAGIC_FOUNDATION_NATS: server.url,
        MAGIC_FOUNDATION_NATS_TLS_CA: file("ca.pem"),
        MAGIC_FOUNDATION_NATS_TLS_CERT: file("client.pem"),
        MAGIC_FOUNDATION_NATS_TLS_KEY: file("client.key"),
      },
      {
        NATS_OPTIONS: JSON.stringify({
          servers: server.url,
          namespace: bed.namespace,
          tls: {
            ca: file("ca.pem"),
            cert: file("client.pem"),
            key: file("client.key"),
          },
        }),
      },
    );
    await bed.refused(
      {
        MAGIC_FOUNDATION_NATS: server.url,
        MAGIC_FOUNDATION_NATS_TLS_CA: file("other-ca.pem"),
        MAGIC_FOUNDATION_NATS_TLS_CERT: file("client.pem"),
        MAGIC_FOUNDATION_NATS_TLS_KEY: file("client.key"),
      },
      "NatsAuthError",
      /TLS/,
      [],
    );
  },
  skip ?? await opensslMissing(),
);
