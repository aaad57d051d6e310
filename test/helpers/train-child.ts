// A training run in its own process, for the kill-and-resume tests: argv[2] is the Trainer options as JSON.
// It prints one line per evaluation (just before the checkpoints are written), per checkpoint (just after)
// and per step, so the parent knows when a SIGKILL lands inside or after a checkpoint write.
import { Trainer, type TrainerOptions } from "../../lib/index.ts";

const options = JSON.parse(process.argv[2]!) as TrainerOptions;
const trainer = new Trainer({ ...options, progress: false });
trainer.on("eval", (e) => console.log(`eval ${e.step}`));
trainer.on("checkpoint", (c) => console.log(`checkpoint ${c.step}`));
trainer.on("step", (s) => console.log(`step ${s.step} ${s.loss}`));
trainer.on("warning", (w) => console.log(`warning ${w.step} ${JSON.stringify(w.message)}`));
process.removeAllListeners("warning");
await trainer.fit();
console.log("done");
