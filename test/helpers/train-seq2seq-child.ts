// The fixture BART training in its own process, for the kill-and-resume tests: argv[2] is the Trainer options
// (all but the model and the data, which are the fixture's and test/helpers/seq2seq-data.ts's) as JSON.
// It prints one line per step, per evaluation (just before the checkpoint writes), per checkpoint (just after)
// and per warning (a resume that fell back to best/, say).
import { Seq2SeqModel, Trainer, type TrainerOptions } from "../../lib/index.ts";
import { BART_FIXTURE, dialogsumBytes } from "./seq2seq-data.ts";

const options = JSON.parse(process.argv[2]!) as Omit<TrainerOptions, "model" | "data">;
const trainer = new Trainer({ ...options, model: Seq2SeqModel.load(BART_FIXTURE), data: await dialogsumBytes() });
trainer.on("eval", (e) => console.log(`eval ${e.step}`));
trainer.on("checkpoint", (c) => console.log(`checkpoint ${c.step}`));
trainer.on("step", (s) => console.log(`step ${s.step} ${s.loss}`));
trainer.on("warning", (w) => console.log(`warning ${w.step} ${JSON.stringify(w.message)}`));
process.removeAllListeners("warning");
await trainer.fit();
console.log("done");
