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
// NKEY users and seeds for the server and the credentials files: the NATS
// client's own NKEY library (already in the lock as its dependency).
import { createUser, decode, fromPublic } from "npm:@nats-io/nkeys@2.0.3";
import { authConnectOptions, refusalReason } from "../src/nats/auth.ts";
import { loadNatsClient } from "../src/nats/client.ts";
import { resolveNats } from "../src/nats/options.ts";
import type { Child } from "./_child.ts";
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

/** Sets `vars` for the length of `fn`, then removes them. */
function withEnv<T>(vars: Record<string, string>, fn: () => T): T {
  for (const [name, value] of Object.entries(vars)) Deno.env.set(name, value);
  try {
    return fn();
  } finally {
    for (const name of Object.keys(vars)) Deno.env.delete(name);
  }
}

Deno.test("resolveNats() takes credentials out of the URLs and never shows a secret in an error", () => {
  const settings = resolveNats({
    servers: ["nats://alice:s3cret@a:4222", "nats://b:4222"],
  });
  assert.deepEqual(settings?.servers, ["nats://a:4222", "nats://b:4222"]);
  assert.deepEqual(settings?.auth, {
    kind: "password",
    user: "alice",
    password: "s3cret",
  });
  const refusals: Array<[Parameters<typeof resolveNats>[0], RegExp]> = [
    [
      { servers: "nats://alice:s3cret@a b:4222" },
      /^Cannot run: nats\.servers has an invalid server address "nats:\/\/a b:4222"/,
    ],
    [
      { servers: "nats://alice:s3cret@a:4222", token: "t0k3n" },
      /^Cannot run: NATS credentials are given 2 ways \(the server URL; nats\.token\); give one$/,
    ],
    [
      { servers: ["nats://alice:s3cret@a:4222", "nats://bob:s3cret@b:4222"] },
      /carry different credentials/,
    ],
    [
      { servers: "nats://a:4222", user: "alice" },
      /^Cannot run: nats\.user is set without a password/,
    ],
    [
      { servers: "nats://a:4222", credentials: "/nonexistent/user.creds" },
      /^Cannot run: nats\.credentials: .*\/nonexistent\/user\.creds/,
    ],
    [
      { servers: "nats://a:4222", tls: { cert: "client.pem" } },
      /^Cannot run: nats\.tls\.cert is set without its pair/,
    ],
    [
      { servers: "nats://a:4222", tls: { ca: "/nonexistent/ca.pem" } },
      /^Cannot run: nats\.tls\.ca "\/nonexistent\/ca\.pem": /,
    ],
  ];
  for (const [options, message] of refusals) {
    assert.throws(() => resolveNats(options), (error: Error) => {
      assert.equal(error.name, "TypeError");
      assert.match(error.message, message);
      assert.ok(!error.message.includes("s3cret"), error.message);
      assert.ok(!error.message.includes("t0k3n"), error.message);
      return true;
    });
  }
});

Deno.test("resolveNats() reads every MAGIC_FOUNDATION_NATS_* variable, each under its option", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mf-nats-auth-" });
  try {
    const ca = `${dir}/ca.pem`;
    await Deno.writeTextFile(ca, "not read before a connection");
    const settings = withEnv({
      MAGIC_FOUNDATION_NATS: "nats://a:4222, nats://b:4222",
      MAGIC_FOUNDATION_NATS_USER: "alice",
      MAGIC_FOUNDATION_NATS_PASSWORD: "s3cret",
      MAGIC_FOUNDATION_NATS_TLS_CA: ca,
    }, () => resolveNats(undefined));
    assert.deepEqual(settings?.servers, ["nats://a:4222", "nats://b:4222"]);
    assert.deepEqual(settings?.auth, {
      kind: "password",
      user: "alice",
      password: "s3cret",
    });
    assert.deepEqual(settings?.tls, { ca });
    // An option wins over its variable.
    const token = withEnv(
      { MAGIC_FOUNDATION_NATS_TOKEN: "from-env" },
      () => resolveNats({ servers: "nats://a:4222", token: "from-option" }),
    );
    assert.deepEqual(token?.auth, { kind: "token", token: "from-option" });
    assert.throws(
      () =>
        withEnv(
          { MAGIC_FOUNDATION_NATS_PASSWORD: "s3cret" },
          () => resolveNats({ servers: "nats://a:4222" }),
        ),
      /^TypeError: Cannot run: MAGIC_FOUNDATION_NATS_PASSWORD is set without a user/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("A .creds file (user JWT and seed) signs the server's nonce with the JWT, read again at each connection", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mf-nats-auth-" });
  try {
    const file = `${dir}/user.creds`;
    const write = async (jwt: string) => {
      const user = createUser();
      const seed = new TextDecoder().decode(user.getSeed());
      await Deno.writeTextFile(
        file,
        `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
          `************************* IMPORTANT *************************\n\n` +
          `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`,
      );
      return user.getPublicKey();
    };
    const first = await write("eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2lnMQ");
    const settings = resolveNats({
      servers: "nats://a:4222",
      credentials: file,
    })!;
    assert.deepEqual(settings.auth, { kind: "credentials", file });
    const client = await loadNatsClient();
    const { authenticator } = authConnectOptions(
      client,
      settings.auth,
      undefined,
    );
    const sign = (nonce: string) =>
      authenticator!(nonce) as { jwt: string; nkey: string; sig: string };
    const nonce = "server-nonce";
    const signed = sign(nonce);
    assert.equal(signed.jwt, "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2lnMQ");
    assert.equal(signed.nkey, first);
    const check = (key: string, sig: string) =>
      fromPublic(key).verify(new TextEncoder().encode(nonce), decode(sig));
    assert.ok(check(signed.nkey, signed.sig), "the seed signed the nonce");
    const second = await write("eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIyIn0.c2lnMg");
    const renewed = sign(nonce);
    assert.equal(renewed.jwt, "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIyIn0.c2lnMg");
    assert.equal(renewed.nkey, second);
    assert.ok(check(renewed.nkey, renewed.sig));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("refusalReason() ends the run on refused credentials and TLS that cannot verify, and retries an outage", () => {
  const error = (name: string, message: string, code?: string) =>
    Object.assign(new Error(message), { name }, code ? { code } : {});
  const none = { kind: "none" } as const;
  assert.equal(
    refusalReason(
      error("AuthorizationError", "Authorization Violation"),
      { kind: "password", user: "alice", password: "s3cret" },
    ),
    'the server refused user "alice" and its password (Authorization Violation)',
  );
  assert.match(
    refusalReason(
      error("Error", "self-signed certificate", "DEPTH_ZERO_SELF_SIGNED_CERT"),
      none,
    )!,
    /^TLS failed: the server's certificate does not verify/,
  );
  assert.match(
    refusalReason(
      error("ConnectionError", "server does not support 'tls'"),
      none,
    )!,
    /^TLS failed: the server does not offer TLS/,
  );
  for (
    const outage of [
      error("ConnectionError", "connection refused"),
      error("Error", "timeout"),
      error("Error", "write EPIPE", "EPIPE"),
      undefined,
    ]
  ) {
    assert.equal(refusalReason(outage, none), undefined);
  }
});

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

authTest(
  "NATS credentials refused after a reconnect (the server's password changed) end the run at once",
  async (bed) => {
    const server = await bed.start(["--user", USER, "--pass", PASSWORD]);
    const child = bed.run("responder", {
      MAGIC_FOUNDATION_NATS: server.url,
      MAGIC_FOUNDATION_NATS_USER: USER,
      MAGIC_FOUNDATION_NATS_PASSWORD: PASSWORD,
    });
    await child.waitFor((line) => line === "READY");
    await server.restart(["--user", USER, "--pass", WRONG]);
    const status = await child.exit();
    const output = child.lines.join("\n");
    assert.equal(status.code, 1, output);
    const failures = child.result()?.failures ?? [];
    assert.equal(failures.length, 1, output);
    assert.match(
      failures[0]!.message,
      /^NatsAuthError: Cannot join NATS at "nats:\/\/127\.0\.0\.1:\d+": the server refused user "alice" and its password \(Authorization Violation\)$/,
    );
    for (const secret of [PASSWORD, WRONG]) {
      assert.ok(!output.includes(secret), `"${secret}" is in:\n${output}`);
    }
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

Deno.test("resolveNats() reads nats.exports, else MAGIC_FOUNDATION_NATS_EXPORTS (comma-separated), and refuses a name that is not a queue", () => {
  assert.deepEqual(
    resolveNats({ servers: "nats://a:4222", exports: ["q://out/*"] })?.exports,
    ["q://out/*"],
  );
  const fromEnv = withEnv(
    { MAGIC_FOUNDATION_NATS_EXPORTS: "q://a/*, q://b" },
    () => resolveNats({ servers: "nats://a:4222" }),
  );
  assert.deepEqual(fromEnv?.exports, ["q://a/*", "q://b"]);
  assert.deepEqual(resolveNats({ servers: "nats://a:4222" })?.exports, []);
  assert.throws(
    () => resolveNats({ servers: "nats://a:4222", exports: ["orders"] }),
    /^TypeError: Cannot run: nats.exports: Invalid queue name "orders"/,
  );
});
