"""Lifecycle policies against a moving clock (berth under libfaketime, lcgclib.FakeClock):
the worked examples of ECR-API.md 4.5.4 with real pushes of real ages, the strict "older than N
days" boundary of 4.5.3, protection of index children, pull-time based transitions (previewed,
not applied: berth has no archive tier), and the background timer (--lifecycle-interval)
following the faked clock."""

import calendar
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import BerthCase, uniq  # noqa: E402
from lcgclib import (DAY, HOUR, SEED_POLICY, ClockedBerth, FakeClock, Layer,  # noqa: E402
                     blob_digests, blob_files, check_pull, faketime_available, gc, image_of,
                     lifecycle)
from ocilib import OCI_INDEX, V2, Index  # noqa: E402


def setUpModule():
    if not faketime_available():
        raise unittest.SkipTest("libfaketime not installed (apt-get install -y faketime)")


def policy(*rules):
    out = []
    for prio, sel, action in rules:
        out.append({"rulePriority": prio, "selection": sel, "action": action})
    text = json.dumps({"rules": out})
    assert len(text) >= 100
    return text


EXPIRE = {"type": "expire"}


def keep(n, status="tagged", **kw):
    d = {"tagStatus": status, "countType": "imageCountMoreThan", "countNumber": n}
    d.update(kw)
    return d


def older(days, status="untagged", count_type="sinceImagePushed", **kw):
    d = {"tagStatus": status, "countType": count_type, "countUnit": "days",
         "countNumber": days}
    d.update(kw)
    return d


class ClockCase(BerthCase):
    """One server and clock per class; helpers to push images of given ages."""

    server_args = ["--lifecycle-interval", "0", "--gc-interval", "0"]

    @classmethod
    def setUpClass(cls):
        cls.clock = FakeClock()
        cls.addClassCleanup(cls.clock.cleanup)
        cls.b = ClockedBerth(clock=cls.clock, name="lc-clock", extra_args=cls.server_args)
        cls.b.start()
        cls.addClassCleanup(cls.b.cleanup)
        cls.c = cls.b.client()

    def setUp(self):
        self.v = V2(self.b.url)
        self.addCleanup(self.v.close)

    def push_aged(self, repo, spec, base=None):
        """spec: [(name, tags, age in days)], pushed oldest first with the clock moved so each
        image is `age` days old at the end (the clock is left at offset `base`).
        Returns {name: image}."""
        base = self.clock.offset if base is None else base
        out = {}
        for name, tags, age in sorted(spec, key=lambda s: -s[2]):
            self.clock.set_offset(base - age * DAY)
            img = image_of([Layer(2048)], label=name)
            if tags:
                for t in tags:
                    self.v.push_image(repo, img, tag=t)
            else:
                self.v.push_image(repo, img)
            img.tags = list(tags)
            out[name] = img
        self.clock.set_offset(base)
        return out

    def preview(self, repo, text=None):
        kw = {"lifecyclePolicyText": text} if text else {}
        self.c.start_lifecycle_policy_preview(repositoryName=repo, **kw)
        g = self.c.get_lifecycle_policy_preview(repositoryName=repo)
        self.assertEqual("COMPLETE", g["status"])
        return g

    def digests_left(self, repo):
        return {d["imageDigest"] for d in
                self.c.describe_images(repositoryName=repo, maxResults=1000)["imageDetails"]}

    def check_policy(self, spec, text, expected):
        """Pushes spec into a new repository, sets the policy, checks that the preview and
        `berth lifecycle` act exactly on `expected` {name: rule priority}, and that
        DescribeImages and /v2 agree afterwards."""
        repo = uniq("lc")
        self.c.create_repository(repositoryName=repo)
        imgs = self.push_aged(repo, spec)
        names = {img.digest: n for n, img in imgs.items()}
        self.c.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=text)
        g = self.preview(repo)
        self.assertEqual(expected, {names[r["imageDigest"]]: r["appliedRulePriority"]
                                    for r in g["previewResults"]}, "preview")
        for r in g["previewResults"]:
            self.assertEqual({"type": "EXPIRE"}, r["action"])
        self.assertEqual(len(expected), g["summary"]["expiringImageTotalCount"])
        res = lifecycle(self.b.data_dir, repo=repo, clock=self.clock)
        self.assertEqual(expected, {names[a["digest"]]: a["rule"] for a in res.actions},
                         "berth lifecycle")
        self.assertEqual({imgs[n].digest for n in imgs if n not in expected},
                         self.digests_left(repo))
        for n, img in imgs.items():
            for ref in img.tags + [img.digest]:
                r = self.v.get("%s/manifests/%s" % (repo, ref))
                self.assertEqual(404 if n in expected else 200, r.status_code,
                                 "GET %s (%s)" % (ref, n))
        return repo, imgs


class WorkedExamples(ClockCase):
    """ECR-API.md 4.5.4 with real ages (exact-boundary ages moved one hour inside)."""

    def test_example1_higher_rule_shadows_lower(self):
        spec = [("I1", ["rc-1", "live-1"], 10), ("I2", ["rc-2", "live-2"], 9),
                ("I3", ["rc-3"], 8)]
        self.check_policy(spec, policy((1, keep(1, tagPatternList=["live*"]), EXPIRE),
                                       (2, keep(1, tagPatternList=["rc*"]), EXPIRE)),
                          {"I1": 1})
        # swapped priorities: rc* first marks I2 and I1; live* only sees claimed images
        self.check_policy(spec, policy((1, keep(1, tagPatternList=["rc*"]), EXPIRE),
                                       (2, keep(1, tagPatternList=["live*"]), EXPIRE)),
                          {"I1": 1, "I2": 1})

    def test_example2_mixed_rule_kinds(self):
        spec = [("J1", ["a-1", "b-1"], 4), ("J2", [], 3), ("J3", ["a-2"], 2),
                ("J4", ["build-7"], 1 - 1.0 / 24), ("J5", [], 1 - 2.0 / 24)]
        self.check_policy(spec, policy((1, keep(1, tagPatternList=["a*"]), EXPIRE),
                                       (2, older(1), EXPIRE),
                                       (3, keep(1, status="any"), EXPIRE)),
                          {"J1": 1, "J2": 2, "J4": 3})

    def test_example3_several_prefixes(self):
        spec = [("K1", ["x-1"], 12), ("K2", ["y-1"], 11), ("K3", ["x-2", "y-2"], 10),
                ("K4", ["x-3"], 4), ("K5", ["x-4", "y-4"], 2)]
        self.check_policy(spec, policy((1, older(5, status="tagged", tagPrefixList=["x", "y"]),
                                        EXPIRE)), {"K3": 1})
        self.check_policy(spec, policy((1, keep(1, tagPrefixList=["x", "y"]), EXPIRE)),
                          {"K3": 1})

    def test_strict_day_boundary(self):
        """'older than N days' is strict (4.5.3): 7 days minus a minute is kept, 7 days plus a
        minute is not."""
        spec = [("old", [], 7 + 1.0 / 1440), ("young", [], 7 - 1.0 / 1440),
                ("tagged", ["v1"], 30)]
        self.check_policy(spec, SEED_POLICY, {"old": 2})

    def test_example4_pull_time_transition_is_previewed_not_applied(self):
        """sinceImagePulled uses the last pull (after the last push) else the push time; the
        transition is previewed (TRANSITION to ARCHIVE) but not applied (README: berth has no
        archive tier)."""
        repo = uniq("lc-pull")
        self.c.create_repository(repositoryName=repo)
        imgs = self.push_aged(repo, [("L1", ["l1"], 100), ("L2", ["l2"], 200)])
        # L2 was pulled 10 days ago
        self.clock.set_offset(-10 * DAY)
        r = self.v.get("%s/manifests/l2" % repo)
        self.assertEqual(200, r.status_code)
        deadline = time.monotonic() + 10
        pulled = None
        while time.monotonic() < deadline and pulled is None:
            time.sleep(0.5)
            d = self.c.describe_images(repositoryName=repo, imageIds=[{"imageTag": "l2"}])
            pulled = d["imageDetails"][0].get("lastRecordedPullTime")
        self.clock.set_offset(0)
        self.assertIsNotNone(pulled, "lastRecordedPullTime never appeared")
        self.assertLess(abs(time.time() - 10 * DAY - pulled.timestamp()), 120)
        text = policy((1, older(90, status="any", count_type="sinceImagePulled"),
                       {"type": "transition", "targetStorageClass": "archive"}))
        self.c.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=text)
        g = self.preview(repo)
        self.assertEqual([(imgs["L1"].digest, 1,
                           {"type": "TRANSITION", "targetStorageClass": "ARCHIVE"}, "STANDARD")],
                         [(x["imageDigest"], x["appliedRulePriority"], x["action"],
                           x["storageClass"]) for x in g["previewResults"]])
        self.assertEqual({"expiringImageTotalCount": 0,
                          "transitioningImageTotalCounts": [
                              {"targetStorageClass": "ARCHIVE", "imageTotalCount": 1}]},
                         g["summary"])
        res = lifecycle(self.b.data_dir, repo=repo, clock=self.clock)
        self.assertEqual([("would-transition", imgs["L1"].digest)],
                         [(a["verb"], a["digest"]) for a in res.actions])
        det = self.c.describe_images(repositoryName=repo)["imageDetails"]
        self.assertEqual({imgs["L1"].digest, imgs["L2"].digest},
                         {d["imageDigest"] for d in det})
        self.assertEqual({"ACTIVE"}, {d.get("imageStatus", "ACTIVE") for d in det})
        h = lifecycle(self.b.data_dir, repo=repo, history=True, clock=self.clock).history
        self.assertEqual([], h, "a transition that was not applied is in the history")

    def test_index_children_are_protected(self):
        """Untagged children of a tagged index are never expired by an untagged rule
        (4.5.3 protected(i)); after gc the index still pulls completely."""
        repo = uniq("lc-idx")
        self.c.create_repository(repositoryName=repo)
        self.clock.set_offset(-30 * DAY)
        kids = [image_of([Layer(2048)], label="amd64"), image_of([Layer(2048)], label="arm64")]
        idx = Index(kids, [{"architecture": "amd64", "os": "linux"},
                           {"architecture": "arm64", "os": "linux"}], media_type=OCI_INDEX)
        r = self.v.push_index(repo, idx, tag="multi")
        self.assertEqual(201, r.status_code)
        lonely = image_of([Layer(2048)], label="lonely")
        self.v.push_image(repo, lonely)  # untagged, not referenced
        self.clock.set_offset(0)
        self.c.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=SEED_POLICY)
        g = self.preview(repo)
        self.assertEqual([lonely.digest], [x["imageDigest"] for x in g["previewResults"]])
        res = lifecycle(self.b.data_dir, repo=repo, clock=self.clock)
        self.assertEqual([lonely.digest], [a["digest"] for a in res.actions])
        self.assertEqual({idx.digest} | {k.digest for k in kids}, self.digests_left(repo))
        gc(self.b.data_dir, grace="1h", clock=self.clock)
        on_disk = blob_files(self.b.data_dir)
        for k in kids:
            for d in blob_digests(k):
                self.assertIn(d, on_disk)
            self.assertEqual([], check_pull(self.v, repo, k.digest, k))
        for d in blob_digests(lonely):
            self.assertNotIn(d, on_disk)
        r = self.v.get("%s/manifests/multi" % repo, headers={"Accept": OCI_INDEX})
        self.assertEqual((200, idx.manifest), (r.status_code, r.content))

    def test_expired_index_releases_its_children_on_the_next_pass(self):
        """An expired index leaves its (untagged) children; they are protected only while an
        index references them, so the next pass expires them and gc frees everything."""
        repo = uniq("lc-idx2")
        self.c.create_repository(repositoryName=repo)
        plats = [{"architecture": "amd64", "os": "linux"},
                 {"architecture": "arm64", "os": "linux"}]
        idxs = []
        for age, tag in ((20, "old"), (10, "new")):
            self.clock.set_offset(-age * DAY)
            kids = [image_of([Layer(2048)], label="%s-%d" % (tag, k)) for k in range(2)]
            idx = Index(kids, plats, media_type=OCI_INDEX)
            self.assertEqual(201, self.v.push_index(repo, idx, tag=tag).status_code)
            idxs.append(idx)
        self.clock.set_offset(0)
        old, new = idxs
        text = policy((1, keep(1, tagPatternList=["*"]), EXPIRE), (2, older(7), EXPIRE))
        self.c.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=text)
        g = self.preview(repo)
        self.assertEqual([(old.digest, 1)], [(x["imageDigest"], x["appliedRulePriority"])
                                             for x in g["previewResults"]])
        first = lifecycle(self.b.data_dir, repo=repo, clock=self.clock)
        self.assertEqual([old.digest], [a["digest"] for a in first.actions])
        left = {new.digest} | {k.digest for k in new.children} | {k.digest
                                                                   for k in old.children}
        self.assertEqual(left, self.digests_left(repo))
        second = lifecycle(self.b.data_dir, repo=repo, clock=self.clock)
        self.assertEqual({k.digest: 2 for k in old.children},
                         {a["digest"]: a["rule"] for a in second.actions})
        self.assertEqual({new.digest} | {k.digest for k in new.children},
                         self.digests_left(repo))
        gc(self.b.data_dir, grace="1h", clock=self.clock)
        on_disk = blob_files(self.b.data_dir)
        for k in old.children:
            for d in blob_digests(k):
                self.assertNotIn(d, on_disk)
        for k in new.children:
            self.assertEqual([], check_pull(self.v, repo, k.digest, k))


class BackgroundTimer(ClockCase):
    """--lifecycle-interval 1d: the background pass runs when the faked clock says a day has
    gone by, and expires an untagged image only once it is more than 7 days old."""

    server_args = ["--lifecycle-interval", "1d", "--gc-interval", "0"]

    def test_untagged_expiry_follows_the_clock(self):
        repo = uniq("lc-timer")
        self.c.create_repository(repositoryName=repo)
        t0 = self.clock.offset
        tagged = image_of([Layer(2048)])
        self.v.push_image(repo, tagged, tag="keep")
        untagged = image_of([Layer(2048)])
        self.v.push_image(repo, untagged)
        self.c.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=SEED_POLICY)

        # 6 days 23 hours later: nothing to do (and a background pass runs: a day went by)
        self.clock.set_offset(t0 + 7 * DAY - HOUR)
        g = self.preview(repo)
        self.assertEqual(([], {"expiringImageTotalCount": 0}),
                         (g["previewResults"], g["summary"]))
        self.assertEqual(0, lifecycle(self.b.data_dir, repo=repo, dry_run=True,
                                      clock=self.clock).count)
        deadline = time.monotonic() + 10
        evaluated = 0
        while time.monotonic() < deadline and not evaluated:
            evaluated = self.c.get_lifecycle_policy(
                repositoryName=repo)["lastEvaluatedAt"].timestamp()
            time.sleep(0.3)
        self.assertLess(abs(evaluated - self.clock.now()), 120,
                        "no background pass after a simulated week (lastEvaluatedAt %s)"
                        % evaluated)
        self.assertEqual({tagged.digest, untagged.digest}, self.digests_left(repo))

        # 7 days 1 hour: the preview shows it; the next pass is due a day after the last one
        self.clock.set_offset(t0 + 7 * DAY + HOUR)
        g = self.preview(repo)
        self.assertEqual([(untagged.digest, 2)], [(x["imageDigest"], x["appliedRulePriority"])
                                                  for x in g["previewResults"]])
        # the CLI tools follow the same clock (and do not without it)
        dry = lifecycle(self.b.data_dir, repo=repo, dry_run=True, clock=self.clock)
        self.assertEqual([(untagged.digest, 2)], [(a["digest"], a["rule"]) for a in dry.actions])
        self.assertEqual(0, lifecycle(self.b.data_dir, repo=repo, dry_run=True).count)
        # 9 days: the background pass expires it
        self.clock.set_offset(t0 + 9 * DAY)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and untagged.digest in self.digests_left(repo):
            time.sleep(0.3)
        self.assertEqual({tagged.digest}, self.digests_left(repo))
        r = self.v.get("%s/manifests/%s" % (repo, untagged.digest))
        self.assertEqual(404, r.status_code)
        self.assertEqual([], check_pull(self.v, repo, "keep", tagged))
        h = lifecycle(self.b.data_dir, repo=repo, history=True, clock=self.clock).history
        self.assertEqual([(untagged.digest, 2, [])], [(e["digest"], e["rule"], e["tags"])
                                                      for e in h])
        at = calendar.timegm(time.strptime(h[0]["at"], "%Y-%m-%dT%H:%M:%SZ"))
        self.assertLess(abs(at - self.clock.now()), 120, "history time follows the clock")


if __name__ == "__main__":
    unittest.main()
