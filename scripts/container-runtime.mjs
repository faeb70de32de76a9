// Exits 0 when testcontainers finds a container runtime that answers (a Docker engine, or whatever
// DOCKER_HOST or ~/.testcontainers.properties name), printing what it found; 1 when none does.
// scripts/test.sh asks this first, so its answer is the one the tests' testcontainers will get.
import { getContainerRuntimeClient } from 'testcontainers';

const PROBE_MS = 5_000;
const timer = setTimeout(() => process.exit(1), PROBE_MS);
try {
  const client = await getContainerRuntimeClient();
  const { serverVersion, operatingSystem } = client.info.containerRuntime;
  process.stderr.write(`test: container runtime answers (server ${serverVersion} on ${operatingSystem})\n`);
  process.exit(0);
} catch {
  process.exit(1);
} finally {
  clearTimeout(timer);
}
