// Test helper: the one way suites get a fresh scratch workspace (or any disposable resource) for each test.
import { Workspace } from './workspace.js';

/** Something a test makes and throws away afterwards. */
export interface Disposable {
  dispose(): Promise<void>;
}

/** Registers hooks on the calling mocha suite: before each test a fresh resource handed to use(); after it, disposed of. */
export function freshEachTest<T extends Disposable>(create: () => Promise<T>, use: (fresh: T) => void): void {
  let current: T | undefined;
  beforeEach(async () => {
    current = await create();
    use(current);
  });
  afterEach(async () => {
    await current?.dispose();
    current = undefined;
  });
}

/** A fresh Workspace (scratch folder, loop devices detached afterwards) for each test of the calling suite. */
export function freshWorkspaceEachTest(use: (workspace: Workspace) => void, prefix?: string): void {
  freshEachTest(() => Workspace.create(prefix), use);
}
