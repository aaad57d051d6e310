// A training run in its own process, for the kill-and-resume test: argv[2] is the Trainer options as JSON.
// It prints one line per checkpoint so the parent knows when a SIGKILL lands after one.
import { Trainer, type TrainerOptions } from "../../lib/index.ts";

const options = JSON.parse(process.argv[2]!) as TrainerOptions;
const trainer = new Trainer({ ...options, progress: false });
trainer.on("checkpoint", (c) => console.log(`checkpoint ${c.step}`));
trainer.on("step", (s) => console.log(`step ${s.step} ${s.loss}`));
await trainer.fit();
console.log("done");
