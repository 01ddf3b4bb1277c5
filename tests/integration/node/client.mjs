// A Node gRPC client of the analyst service, built from the .proto files only (no generated code).
//
// Usage: node client.mjs TARGET [DATASET_ID] [PROMPT_INDEX]
//   TARGET        host:port of the analyst service (plaintext).
//   DATASET_ID    dataset to ask about; default: the first one listed.
//   PROMPT_INDEX  which of the dataset's suggested prompts to ask; default 0.
//
// It calls ListDatasets (following page tokens), then streams Ask for one suggested prompt and
// prints one JSON object on stdout: the dataset ids, the question, every event's stage and
// sequence, the final run state and the result row count. Exit code 0 when both calls completed
// (whatever the run's state), 1 on a gRPC or usage error (details on stderr).

import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoProtos = path.resolve(here, "..", "..", "..", "protos");
// protobufjs (bundled with proto-loader) ships google/protobuf/*.proto; the common well-known
// types (timestamp, duration, struct) are also built into protobufjs itself.
const require = createRequire(import.meta.url);
const protobufjsDir = path.dirname(require.resolve("protobufjs/package.json"));

const DEADLINE_MS = 120_000;

function deadline() {
  return new Date(Date.now() + DEADLINE_MS);
}

function fail(message) {
  process.stderr.write(`node client: ${message}\n`);
  process.exit(1);
}

function loadService() {
  const definition = protoLoader.loadSync("csv_analyst/v1/analyst_service.proto", {
    includeDirs: [repoProtos, protobufjsDir],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const api = grpc.loadPackageDefinition(definition);
  return api.csv_analyst.v1.AnalystService;
}

function listDatasets(client) {
  return new Promise((resolve, reject) => {
    const datasets = [];
    const page = (token) => {
      client.ListDatasets({ page_size: 2, page_token: token }, { deadline: deadline() }, (error, response) => {
        if (error) {
          reject(error);
          return;
        }
        datasets.push(...response.datasets);
        if (response.next_page_token) {
          page(response.next_page_token);
        } else {
          resolve(datasets);
        }
      });
    };
    page("");
  });
}

function ask(client, datasetId, question) {
  return new Promise((resolve, reject) => {
    const events = [];
    const call = client.Ask({ dataset_id: datasetId, question }, { deadline: deadline() });
    call.on("data", (response) => events.push(response.event));
    call.on("error", reject);
    call.on("end", () => resolve(events));
  });
}

function summarise(datasets, datasetId, question, events) {
  const done = events.filter((e) => e.stage === "STAGE_DONE").at(-1);
  const resultEvent = events.filter((e) => e.stage === "STAGE_RESULT").at(-1);
  const run = done && done.payload === "run" ? done.run : null;
  const resultTable = run && run.result ? run.result : resultEvent && resultEvent.result;
  return {
    datasets: datasets.map((d) => d.dataset_id),
    dataset_names: datasets.map((d) => d.name),
    dataset: datasetId,
    question,
    events: events.map((e) => ({
      stage: e.stage,
      sequence: Number(e.sequence),
      run_id: e.run_id,
      has_time: Boolean(e.event_time && (Number(e.event_time.seconds) > 0 || e.event_time.nanos > 0)),
      payload: e.payload || null,
    })),
    final_state: run ? run.state : null,
    cache_hit: run ? Boolean(run.cache_hit) : null,
    run_id: run ? run.run_id : null,
    error: run && run.error && run.error.reason ? { reason: run.error.reason, message: run.error.message } : null,
    columns: resultTable ? resultTable.columns.map((c) => c.name) : [],
    row_count: resultTable ? Number(resultTable.row_count) : 0,
    rows_received: resultTable ? resultTable.rows.length : 0,
    first_row: resultTable && resultTable.rows.length
      ? resultTable.rows[0].values.map((v) => (v.kind ? v[v.kind] : null))
      : null,
  };
}

async function main() {
  const [target, wantedDataset, promptIndexText] = process.argv.slice(2);
  if (!target) {
    fail("usage: node client.mjs TARGET [DATASET_ID] [PROMPT_INDEX]");
  }
  const AnalystService = loadService();
  const client = new AnalystService(target, grpc.credentials.createInsecure());
  try {
    const datasets = await listDatasets(client);
    if (datasets.length === 0) {
      fail("ListDatasets returned no datasets");
    }
    const dataset = wantedDataset ? datasets.find((d) => d.dataset_id === wantedDataset) : datasets[0];
    if (!dataset) {
      fail(`dataset ${wantedDataset} is not listed`);
    }
    const question = dataset.prompts[Number(promptIndexText || 0)];
    if (!question) {
      fail(`dataset ${dataset.dataset_id} has no prompt ${promptIndexText || 0}`);
    }
    const events = await ask(client, dataset.dataset_id, question);
    process.stdout.write(JSON.stringify(summarise(datasets, dataset.dataset_id, question, events)) + "\n");
  } catch (error) {
    fail(`${error.code !== undefined ? grpc.status[error.code] : "error"}: ${error.details || error.message}`);
  } finally {
    client.close();
  }
}

await main();
