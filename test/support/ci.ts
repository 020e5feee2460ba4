/**
 * Tests that need root, a capability or a tool skip themselves (saying why) on a developer's machine without
 * them. Under CI (CI=true) they must run: a skip there would hide a missing install step in .ci/run.
 */
export function availableOrCiFails(available: boolean, what: string): boolean {
  if (!available && process.env.CI === 'true') {
    throw new Error(`${what} is not available here, and CI must run these tests: run .ci/run as root on Debian`);
  }
  return available;
}
