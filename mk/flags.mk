# mk/flags.mk - warning set and per-variant flags. Warnings are errors in dev/CI builds
# (WERROR=1 default); release builds for packagers can pass WERROR=0.
WERROR ?= 1
WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
        -Wvla -Wimplicit-fallthrough -Wwrite-strings -Wno-format-nonliteral
ifeq ($(WERROR),1)
WARN += -Werror
endif
BASE_CFLAGS := -std=c11 -g -fno-omit-frame-pointer -pthread $(WARN)

ifeq ($(VARIANT),release)
VCFLAGS := -O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong -DNDEBUG
VLDFLAGS :=
else ifeq ($(VARIANT),debug)
VCFLAGS := -O0 -DBERTH_DEBUG
VLDFLAGS :=
else ifeq ($(VARIANT),asan)
VCFLAGS := -O1 -DBERTH_DEBUG -fsanitize=address,undefined -fno-sanitize-recover=undefined
VLDFLAGS := -fsanitize=address,undefined
else ifeq ($(VARIANT),tsan)
VCFLAGS := -O1 -DBERTH_DEBUG -fsanitize=thread
VLDFLAGS := -fsanitize=thread
else
$(error unknown VARIANT=$(VARIANT): use release, debug, asan or tsan)
endif
