#include "experiment/PhaseTraining.h"

namespace cellc::runtime {

TrainConfig trainConfig(const Experiment& e, const PhaseSpec& p) {
  const TrainSettings& t = p.train;
  TrainConfig c;
  c.optimizer = t.optimizer;
  c.learningRate = t.learningRate;
  c.clipNorm = t.clipNorm;
  c.batch = t.batch;
  c.maxSteps = t.maxSteps;
  c.validateEvery = t.validateEvery;
  c.validationBatch = t.validationBatch;
  c.metric = t.metric;
  c.targetError = t.targetError;
  c.targetLoss = t.targetLoss;
  c.patience = t.patience;
  c.seed = static_cast<uint64_t>(e.seed);
  c.noise = t.noise;
  c.dropout.p = t.dropout;
  c.dropout.perStep = t.dropoutPerStep;
  c.dropout.fixed = t.dropoutFixed;
  c.frozen = t.frozen;
  for (auto& [name, ps] : e.params)
    if (ps.frozen) c.frozen.push_back(name);
  c.segment = t.segment;
  c.memoryBudgetMb = t.memoryBudgetMb;
  c.threads = static_cast<int>(t.threads);
  c.batchShards = t.batchShards;
  c.inputStage = t.inputStage;
  c.flushDenormals = t.flushDenormals;
  c.omega = t.omega;
  c.omegaState = t.omegaState;
  c.lossMilestones = t.lossMilestones;
  c.lossWindow = t.lossWindow;
  c.checkpointEvery = t.checkpointEvery;
  return c;
}

}  // namespace cellc::runtime
