import Glibc
import GLMNumerics

extension Session {
    /// docs/MODEL.md §3.5  SwiGLU MLP (a dense layer's, or the shared expert's) of `rows` rows of `input` (width H)
    /// into `output` (width H), using `workspace.gate` and `workspace.up` as scratch:
    ///   MLP(m) = Lin(silu(Lin(m; Wgate)) ⊙ Lin(m; Wup); Wdown)
    func swiGLU(_ mlp: MLPWeights, input: UnsafeMutablePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>) {
        let gate = workspace.gate.pointer, up = workspace.up.pointer
        projections.append(mlp.gate, tokens: rows, input: input, output: gate)
        projections.append(mlp.up, tokens: rows, input: input, output: up)
        projections.run()
        siluMultiplyRows(gate: gate, up: up, rows: rows, width: mlp.width)
        projections.run(mlp.down, tokens: rows, input: gate, output: output)
    }

    /// docs/MODEL.md §3.6  MoE block of `rows` normed rows `m` (width H) into `output` (width H):
    ///   s = sigmoid(m · W_routerᵀ) (f32); experts chosen by s + e_score_correction_bias (group-limited top-k);
    ///   weights = s of the chosen, renormalised if norm_topk_prob, × routed_scaling_factor;
    ///   MoE(m) = Σ_e w_e · MLP_e(m) + MLP_shared(m)
    /// Each expert runs once over all the rows routed to it (gathered contiguously), as on-disk per-expert matrices;
    /// the shared expert's projections join the routed experts' in the same parallel jobs.
    func mixtureOfExperts(_ moe: MoEWeights, layer: Int, input m: UnsafeMutablePointer<Float>, rows: Int,
                          output: UnsafeMutablePointer<Float>) {
        let c = model.config
        let H = c.hiddenSize, I = c.moeIntermediateSize, K = c.numExpertsPerTok, E = c.nRoutedExperts
        let table = workspace.routing

        // Router logits z = m · W_routerᵀ, then the routing table.
        let z = workspace.routerLogits.pointer
        projections.run(moe.router, tokens: rows, input: m, output: z)
        route(z, bias: moe.correctionBias.pointer, rows: rows, into: table)
        trace?.recordExperts(layer: layer, table, rows: rows)

        // Gather each (token, expert) pair's input row, grouped by expert.
        let x = workspace.expertInput.pointer
        workers.run(tasks: rows * K, elementsPerTask: H,
                    job: GatherExpertInputs(input: m, slotToken: table.slotToken, width: H, into: x))

        // gate and up of every routed expert over its rows, and of the shared expert over all rows.
        let gate = workspace.expertGate.pointer, up = workspace.expertUp.pointer
        for e in 0..<E {
            let first = table.expertStart[e], count = table.expertStart[e + 1] - first
            if count == 0 { continue }
            let expert = moe.experts[e]
            projections.append(expert.gate, tokens: count, input: x + first * H, output: gate + first * I)
            projections.append(expert.up, tokens: count, input: x + first * H, output: up + first * I)
        }
        let sharedGate = workspace.gate.pointer, sharedUp = workspace.up.pointer
        if let shared = moe.shared {
            projections.append(shared.gate, tokens: rows, input: m, output: sharedGate)
            projections.append(shared.up, tokens: rows, input: m, output: sharedUp)
        }
        projections.run()
        siluMultiplyRows(gate: gate, up: up, rows: rows * K, width: I)
        if let shared = moe.shared { siluMultiplyRows(gate: sharedGate, up: sharedUp, rows: rows, width: shared.width) }

        // down of every routed expert, and of the shared expert straight into the output.
        let y = workspace.expertOutput.pointer
        for e in 0..<E {
            let first = table.expertStart[e], count = table.expertStart[e + 1] - first
            if count == 0 { continue }
            projections.append(moe.experts[e].down, tokens: count, input: gate + first * I, output: y + first * H)
        }
        if let shared = moe.shared { projections.append(shared.down, tokens: rows, input: sharedGate, output: output) }
        projections.run()

        // Per token: Σ_e w_e · y_e in ascending expert id, plus the unscaled shared expert already in `output`.
        // The gathered inputs are no longer needed: they are the sums' scratch.
        workers.run(tasks: rows, elementsPerTask: (K + 2) * H,
                    job: CombineExperts(expertOutputs: y, table: table, topK: K, width: H, hasShared: moe.shared != nil,
                                        scratch: x, output: output))
    }

    /// Fills `table` from the router logits `z` [rows, E] (overwritten with the sigmoid scores):
    ///   s = sigmoid(z); c = s + bias
    ///   n_group > 1: keep the topk_group groups with the largest sum of their two best c, c = -inf elsewhere
    ///   S = the K largest c (ties: the lower expert id); w_e = s_e (/ (Σ_S s + 1e-20)) × routed_scaling_factor
    func route(_ z: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, into table: RoutingTable) {
        let c = model.config
        let E = c.nRoutedExperts, K = c.numExpertsPerTok, groups = c.nGroup
        let groupSize = E / groups
        let scaling = Float(c.routedScalingFactor)
        let choice = table.choice

        for e in 0...E { table.expertStart[e] = 0 }
        for t in 0..<rows {
            let s = z + t * E
            for e in 0..<E {
                s[e] = 1 / (1 + expf(-s[e]))
                choice[e] = s[e] + bias[e]
            }
            if groups > 1 { keepBestGroups(choice, groups: groups, groupSize: groupSize, keep: c.topkGroup, table: table) }

            // The K best choices, by repeated selection (K is small); then in ascending expert id.
            let chosen = table.pairExpert + t * K
            for k in 0..<K {
                var best = 0
                for e in 1..<max(E, 1) where choice[e] > choice[best] { best = e }
                chosen[k] = best
                choice[best] = -Float.infinity
            }
            insertionSort(chosen, count: K)

            var total: Float = 0
            for k in 0..<K { total += s[chosen[k]] }
            let denominator: Float = c.normTopkProb ? total + 1e-20 : 1
            for k in 0..<K {
                table.pairWeight[t * K + k] = s[chosen[k]] / denominator * scaling
                table.expertStart[chosen[k] + 1] += 1
            }
        }

        // Group the pairs by expert: expert e's rows are expertStart[e] ..< expertStart[e + 1], tokens ascending.
        for e in 0..<E {
            table.expertStart[e + 1] += table.expertStart[e]
            table.fill[e] = table.expertStart[e]
        }
        for t in 0..<rows {
            for k in 0..<K {
                let e = table.pairExpert[t * K + k]
                let slot = table.fill[e]
                table.fill[e] = slot + 1
                table.pairSlot[t * K + k] = slot
                table.slotToken[slot] = t
            }
        }
    }

    /// Group-limited routing: sets `choice` to -inf outside the `keep` groups with the largest sum of their two
    /// best choices (ties: the lower group index).
    private func keepBestGroups(_ choice: UnsafeMutablePointer<Float>, groups: Int, groupSize: Int, keep: Int,
                                table: RoutingTable) {
        for g in 0..<groups {
            var first = -Float.infinity, second = -Float.infinity
            for e in (g * groupSize)..<((g + 1) * groupSize) {
                let v = choice[e]
                if v > first { second = first; first = v } else if v > second { second = v }
            }
            table.groupScore[g] = first + second
            table.groupKept[g] = false
        }
        for _ in 0..<keep {
            var best = -1
            for g in 0..<groups where !table.groupKept[g] {
                if best < 0 || table.groupScore[g] > table.groupScore[best] { best = g }
            }
            table.groupKept[best] = true
        }
        for g in 0..<groups where !table.groupKept[g] {
            (choice + g * groupSize).update(repeating: -Float.infinity, count: groupSize)
        }
    }

    private func insertionSort(_ x: UnsafeMutablePointer<Int>, count: Int) {
        if count < 2 { return }
        for i in 1..<count {
            let v = x[i]
            var j = i
            while j > 0 && x[j - 1] > v { x[j] = x[j - 1]; j -= 1 }
            x[j] = v
        }
    }

    /// `gate[r] = silu(gate[r]) ⊙ up[r]` for `rows` rows of `width`.
    func siluMultiplyRows(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, rows: Int, width: Int) {
        workers.run(tasks: rows, elementsPerTask: 2 * width, job: SiLUMultiplyRows(gate: gate, up: up, width: width))
    }
}

/// Task s copies the input row of the token routed to grouped row s: `into[s] = input[slotToken[s]]`.
private struct GatherExpertInputs: WorkerJob {
    let input: UnsafePointer<Float>
    let slotToken: UnsafePointer<Int>
    let width: Int
    let into: UnsafeMutablePointer<Float>

    func run(slot _: Int, task s: Int) {
        (into + s * width).update(from: input + slotToken[s] * width, count: width)
    }
}

/// Task t: `output[t] = Σ_k w_{t,k} · expertOutputs[pairSlot(t, k)]` in ascending expert id, plus `output[t]`
/// itself (the unscaled shared expert's output) when `hasShared`. Row t of `scratch` holds the sum.
private struct CombineExperts: WorkerJob {
    let expertOutputs: UnsafePointer<Float>
    let table: RoutingTable
    let topK, width: Int
    let hasShared: Bool
    let scratch: UnsafeMutablePointer<Float>
    let output: UnsafeMutablePointer<Float>

    func run(slot _: Int, task t: Int) {
        let H = width, K = topK
        let sum = scratch + t * H
        sum.update(repeating: 0, count: H)
        for k in 0..<K {
            let pair = t * K + k
            VectorKernels.addScaled(expertOutputs + table.pairSlot[pair] * H, times: table.pairWeight[pair], to: sum,
                                    count: H)
        }
        if hasShared { VectorKernels.add(output + t * H, to: sum, count: H) }
        (output + t * H).update(from: sum, count: H)
    }
}

/// Task r: `gate[r] = silu(gate[r]) ⊙ up[r]`.
private struct SiLUMultiplyRows: WorkerJob {
    let gate: UnsafeMutablePointer<Float>
    let up: UnsafePointer<Float>
    let width: Int

    func run(slot _: Int, task r: Int) {
        VectorKernels.siluMultiply(gate: gate + r * width, up: up + r * width, into: gate + r * width, count: width)
    }
}
