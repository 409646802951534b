// A phase's typed settings (Spec.h) as the trainer's configuration (train/Trainer.h): the one
// mapping from train.* fields to a TrainConfig, for `cellc run` and cellc.train alike.
#pragma once

#include "experiment/Spec.h"
#include "train/Trainer.h"

namespace cellc::runtime {

// Every setting the phase's keys make: the seed, the train.* fields, and the params frozen by the
// phase or by [params.NAME]. The files (checkpoint, metrics) and the phase's name are the caller's.
TrainConfig trainConfig(const Experiment& e, const PhaseSpec& p);

}  // namespace cellc::runtime
