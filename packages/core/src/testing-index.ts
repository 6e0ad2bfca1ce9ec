// @anneal/core/testing: fakes and readers for tests, kept out of the public API: a stand-in
// for huggingface.co (fakeHubFetch) and a TensorBoard event decoder written from the formats'
// specs (readTensorBoardLogdir), independent of the writer.
export { fakeHubFetch, type FakeHubRepo } from './testing.js';
export { decodeLogdir as readTensorBoardLogdir } from './testing-events.js';
export { fakeHubPush, serveFakeHub, type FakeHubPush, type FakeHubRepoState } from './testing-hub-push.js';
