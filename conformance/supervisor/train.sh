#!/bin/sh
# The command of this fixture's run: metric lines on stdout, read by the
# supervisor (`labmate run -- sh train.sh`), and an exit code of 3.
echo "epoch 1"
printf '%s\n' '##labmate {"loss": 0.5, "acc": 0.25}'
printf '%s\n' '##labmate {"loss": NaN, "acc": Infinity}'
printf '%s\n' '##labmate {"step": 9007199254740993, "loss": -Infinity, "acc": 1}'
printf '%s\n' '##labmate {"step": 9223372036854775807, "loss": 0.125}'
printf '%s\n' '##labmate {"loss": 0.0625}'
printf '%s\n' '##labmate {"step": -9223372036854775808, "loss": 3}'
printf '%s\n' '##labmate {"step": 9223372036854775808, "loss": 4}'
printf '%s\n' '##labmate {"step": 1e3, "acc": 0.5, "loss": "high"}'
printf '%s\n' '##labmate {"step": 2.5, "loss": 1}'
printf '%s\n' '##labmate {"損失": 1.5, "🚀/speed": 2.5, "e\u0301": 3.5, "say \"hi\"\n": 4.5}'
printf '%s\n' '##labmate not json'
echo "a traceback would go here" >&2
exit 3
